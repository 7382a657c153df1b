account "main" {
  regions = ["us-east-1"]
  regions = [
    "eu-west-1",
  ]
  profile = "a"
  profile = 3
}

policy "web" {
  account     = account.main
  generations = 1
  select { tag = "a"  tag = "b" }
  generations = 2  enabled = true  enabled = false
}
