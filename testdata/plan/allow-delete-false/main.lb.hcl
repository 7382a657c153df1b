account "main" {
  regions = ["us-east-1"]
  allow_delete = false
}

policy "web" {
  account             = account.main
  generations         = 1
  auto_remove_targets = "yes"

  instance "i-0000000a" {
    region = "us-east-1"
  }
}
