account "main" {
  regions = ["us-east-1"]
}

policy "web" {
  account             = account.main
  generations         = 2
  auto_remove_targets = "yes"

  select {
    tag   = "team"
    value = "web"
  }
}

policy "db" {
  account     = account.main
  generations = 3
}

policy "web_tpl" {
  template    = true
  account     = account.main
  generations = 5
}
