account "short" {
  regions    = ["us-east-1"]
  account_id = "12345"
}

account "letters" {
  regions    = ["us-east-1"]
  account_id = "12345678901x"
}

account "number" {
  regions    = ["us-east-1"]
  account_id = 123456789012
}
