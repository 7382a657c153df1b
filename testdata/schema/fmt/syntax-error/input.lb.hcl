account "main" {
  regions = ["us-east-1"
}
