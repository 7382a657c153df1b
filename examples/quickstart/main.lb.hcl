# One account, one policy: keep the last two backups of a named instance and
# of every instance tagged team=web.

account "main" {
  regions = ["us-east-1"]
}

policy "web" {
  account     = account.main
  generations = 2
  instance "i-0123456789abcdef0" { region = "us-east-1" }
  select {
    tag   = "team"
    value = "web"
  }
  auto_remove_targets = "yes"
}
