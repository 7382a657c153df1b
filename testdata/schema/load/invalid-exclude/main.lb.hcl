account "main" {
  regions = ["us-east-1"]
}

policy "web" {
  account     = account.main
  generations = 2
  select {
    tag = "team"
  }
  exclude {
    value = "prod"
  }
  exclude "named" {
    tag = "env"
  }
}
