account "main" {
  regions = ["us-east-1"]
}

account "vault" {
  type         = "dr"
  regions      = ["us-east-1", "us-west-2"]
  allow_delete = false
  manage_role {
    name    = "lifeboat-dr"
    trusted = account.main
  }
  secured {
    prohibited  = ["ec2:DeleteSnapshot", "ec2:DeregisterImage", "rds:Delete*", "*"]
    check_every = "6h"
  }
}
