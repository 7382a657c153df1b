account "main" {
  regions = ["eu-central-1"]
}
