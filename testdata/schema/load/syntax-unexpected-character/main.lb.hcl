account "main" {
  regions = ["us-east-1"]
}

policy "web" {
  account     = account.main
  select { tag = "team"  value = "web*" }
  generations = @2
}
