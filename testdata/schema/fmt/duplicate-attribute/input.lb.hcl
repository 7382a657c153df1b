account "main" {
  regions = ["us-east-1"]
  regions = ["eu-west-1"]
}
