account "main" {
  regions = ["us-east-1"]
}

policy "web" {
  select { tag = "a" }
}
