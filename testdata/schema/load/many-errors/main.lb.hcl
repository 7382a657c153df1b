lifeboat {
  state {
    backend = "postgres"
    paht    = "x.db"
  }
}

schedule "hourly" {
  every = "1h"
}

account "main" {
  type         = "backups"
  regions      = ["us-east-1", "us-east-1", "mars-1"]
  allow_delete = "false"
  assume_role {
    role_arn = "arn:aws:iam::1234:role/lifeboat"
  }
}

account "main" {
  regions = ["eu-west-1"]
}

policy "web" {
  account     = account.mian
  generation  = 2
  enabled     = 1
  description = "Ünïcode ${var.x}"  auto_remove_targets = "maybe"
  instance "i-123" {
    mode    = "snapshot"
    volumes = "all"
    volumes = "root"
  }
  instance "i-0123456789abcdef0" { region = "eu-west-1" }
  instance "i-0123456789abcdef0" { region = "us-east-1" }
  volume "vol-0123456789abcdef0" {}
  dynamodb "orders" { region = "us-east-1" }
  select { value = "x" }
}

policy "web" {
  account     = "main"
  generations = 0
  instance {}
}
