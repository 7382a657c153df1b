account "main" {
  regions = ["us-east-1"]
}

policy "web" {
  account             = account.main
  generations         = 2
  auto_remove_targets = "yes"

  instance "i-0000000a" {
    region = "us-east-1"
  }
}
