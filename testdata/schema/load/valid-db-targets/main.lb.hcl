account "main" {
  regions = ["us-east-1", "eu-west-1"]
}

policy "data" {
  account     = account.main
  generations = 7

  instance "i-0123456789abcdef0" {
    region       = "us-east-1"
    mode         = "initial_ami"
    ami_rotation = 30
  }
  rds "orders-db" {
    region = "us-east-1"
  }
  aurora "orders" {
    region = "eu-west-1"
  }
}
