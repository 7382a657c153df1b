account "main" {
  type         = dr
  regions      = "us-east-1"
  profile      = 42
  allow_delete = "yes"
}

account "list" {
  regions = ["us-east-1", 2, true, ["eu-west-1"]]
  profile = ""
}

policy "web" {
  account             = account.main
  generations         = "7"
  enabled             = "true"
  description         = ["a"]
  auto_remove_targets = true
  instance "i-0123456789abcdef0" {
    volumes         = ["all"]
    exclude_volumes = "vol-0123456789abcdef0"
    mode            = 1
  }
}

policy "fraction" {
  account     = account.main
  generations = 2.5
  select {
    tag   = 1
    value = false
  }
}

policy "object" {
  account     = account.main
  generations = { count = 2 }
  select { tag = "" }
}
