account "main" {
  regions      = ["us-east-1"]
  account_id   = "012345678901"
  allow_delete = false
}
