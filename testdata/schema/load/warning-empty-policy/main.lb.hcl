account "main" {
  regions = ["us-east-1"]
}

policy "nothing" {
  account     = account.main
  generations = 3
}

policy "twice" {
  account     = account.main
  generations = 3
  select { tag = "team"  value = "web*" }
  select {
    tag   = "team"
    value = "web*"
  }
  select { tag = "team" }
}
