account "main" {
  regions = ["us-east-1"]
}

account "vault" {
  type         = "dr"
  regions      = ["us-east-1"]
  allow_delete = true
  manage_role {
    name    = "lifeboat-dr"
    trusted = account.main
  }
  secured {
    prohibited = ["ec2:Delete*", "iam:*"]
  }
}
