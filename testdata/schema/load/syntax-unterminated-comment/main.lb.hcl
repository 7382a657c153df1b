account "main" {
  regions = ["us-east-1"] /* never
  closed
}
