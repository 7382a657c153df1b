account "main" {
  regions = ["us-east-1"]
}

account "vault" {
  regions = ["us-west-2"]
  assume_role {
    role_arn = "arn:aws:iam::222222222222:role/x"
  }
}

vpc_capture "prod" {
  account = account.main
}

vpc_clone "west" {
  capture    = vpc_capture.prod
  vpc        = "vpc-0123abcd"
  to_region  = "us-west-2"
  to_account = account.vault
}

vpc_clone "east" {
  capture   = vpc_capture.prod
  vpc       = "vpc-0000ffff"
  to_region = "us-east-2"
}
