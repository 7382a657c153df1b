account "main" {
  regions = ["us-east-1"] # c


  profile = "p"
}
