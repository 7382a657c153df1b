account "main" {
  regions = ["us-east-1"]
}

policy "web" {
  account     = account.main
  generations = 1
  instance "i-0123456789ABCDEF0" {}
  instance "i-0123456789abcdef" {}
  instance "vol-0123456789abcdef0" {}
  volume "vol-0123" {}
  volume "i-0123456789abcdef0" {}
  instance "i-0123abcd" {}
  instance "i-0123abcd" { mode = "ami" }
  volume "vol-0123abcd" {}
  volume "vol-0123abcd" {}
  select { tag = "" }
  select { tag = "   " }
  select {}
}

# The same instance in two policies is fine.
policy "other" {
  account     = account.main
  generations = 1
  instance "i-0123abcd" {}
}
