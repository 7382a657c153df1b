lifeboat "main" {
  state "x" {}
}

account {
  regions = ["us-east-1"]
}

account "a" "b" {
  regions = ["us-east-1"]
}

account "9lives" {
  regions = ["us-east-1"]
}

account "has space" {
  regions = ["us-east-1"]
}

account ok-name {
  regions = ["us-east-1"]
  assume_role "x" {
    role_arn = "arn:aws:iam::111122223333:role/lifeboat"
  }
}

policy "web.app" {
  account     = account.ok-name
  generations = 1
  select "x" { tag = "a" }
  volume "vol-0123456789abcdef0" "extra" {}
}
