account "empty" {
  regions = []
}

account "bad" {
  regions = ["us-east-1", "US-WEST-2", "us-east-1", "eu-west"]
}

account "two" {
  regions = ["us-east-1", "eu-west-1"]
}

account "one" {
  regions = ["ap-southeast-2"]
}

account "missing" {
  type = "dr"
}

policy "two" {
  account     = account.two
  generations = 1
  instance "i-0123456789abcdef0" {
    mode = "ami"
  }
  volume "vol-0123456789abcdef0" {
    region = "ap-southeast-2"
  }
  instance "i-0123456789abcdef1" {
    region = "eu-west-1"
  }
  volume "vol-0123456789abcdef1" {
    region = "eu-west"
  }
}

policy "one" {
  account     = account.one
  generations = 1
  instance "i-0123456789abcdef0" {
    exclude_volumes = ["vol-0123456789abcdef0", "vol-XYZ", "vol-0123456789abcdef0"]
  }
  volume "vol-0123456789abcdef0" { region = "us-east-1" }
}

# The account's own regions are wrong: targets are not checked against them.
policy "bad" {
  account     = account.bad
  generations = 1
  volume "vol-0123456789abcdef0" { region = "eu-central-1" }
  volume "vol-0123456789abcdef1" {}
}
