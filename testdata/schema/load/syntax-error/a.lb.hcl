account "main" {
  regions = ["us-east-1"]
}

policy "web" {
  account = account.main
  generations = 
}
