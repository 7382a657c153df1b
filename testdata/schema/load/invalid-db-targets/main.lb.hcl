account "main" {
  regions = ["us-east-1"]
}

policy "data" {
  account     = account.main
  generations = 7

  instance "i-0123456789abcdef0" {
    mode         = "initial_ami"
    ami_rotation = 0
  }
  rds "1orders" {}
  rds "orders--db" {}
  rds "orders" {}
  rds "orders" {}
  aurora "orders-cluster" {
    region  = "eu-west-1"
    engine  = "aurora"
  }
  aurora {}
  aurora "orders" {}
}
