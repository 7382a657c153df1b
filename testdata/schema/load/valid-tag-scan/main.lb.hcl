account "main" {
  regions = ["us-east-1", "eu-west-1"]

  # Tags are looked for in one region only, on instances and RDS
  # instances; run mode looks every hour between backups.
  tag_scan {
    regions = ["eu-west-1"]
    kinds   = ["instance", "rds"]
    every   = "1h"
  }
}

account "plain" {
  regions = ["us-east-1"]

  tag_scan {
  }
}
