account "main" {
  regions = ["us-east-1", "eu-west-1"]

  tag_scan {
    regions = ["us-east-1", "ap-south-1", "us-east-1"]
    kinds   = ["instance", "bucket"]
    every   = "30s"
  }
}

account "other" {
  regions = ["us-east-1"]

  tag_scan {
    regions = []
    kinds   = []
  }

  tag_scan {
  }
}

account "dr" {
  type    = "dr"
  regions = ["us-west-2"]

  tag_scan {
    every = "1h"
  }
}
