# Accounts live in their own file; policies refer to them across files.
account "prod" {
  regions = ["us-east-1", "eu-west-2"]
}

account vault {
  type    = "dr"
  regions = ["us-gov-west-1", "cn-north-1", "ap-southeast-1"]
  profile = null # null means "not set"
}
