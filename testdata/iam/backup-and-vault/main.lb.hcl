# A backup account with instances (snapshots and AMIs), a volume and an RDS
# database, copied to a DR account that never deletes; a VPC capture; alerts
# to SNS. `lifeboat iam policy` prints what each account's principal needs.
account "main" {
  regions = ["us-east-1"]
}

account "vault" {
  type         = "dr"
  regions      = ["us-east-1", "us-west-2"]
  allow_delete = false
  assume_role {
    role_arn = "arn:aws:iam::222222222222:role/lifeboat"
  }
  manage_role {
    name    = "lifeboat-dr"
    trusted = account.main
  }
  secured {
    prohibited  = ["ec2:DeleteSnapshot", "ec2:DeregisterImage"]
    check_every = "6h"
  }
}

policy "web" {
  account     = account.main
  generations = 7
  instance "i-0123456789abcdef0" {
    region = "us-east-1"
  }
  instance "i-0123456789abcdef1" {
    region = "us-east-1"
    mode   = "ami"
  }
  volume "vol-0123456789abcdef0" {
    region = "us-east-1"
  }
  rds "orders" {
    region = "us-east-1"
  }
  dr {
    regions = ["us-west-2"]
    cross_account {
      to            = account.vault
      keep_original = true
    }
  }
}

vpc_capture "prod" {
  account = account.main
}

notifications {
  sns_topic = "arn:aws:sns:us-east-1:123456789012:lifeboat"
  account   = account.main
  region    = "us-east-1"
}
