account "main" {
  regions = ["us-east-1"]
}

policy "web_tpl" {
  template    = true
  account     = account.main
  generations = 2
  instance "i-0123456789abcdef0" {
    region = "us-east-1"
  }
  select {
    tag   = "team"
    value = "web"
  }
}

policy "quoted" {
  template    = "yes"
  account     = account.main
  generations = 2
}
