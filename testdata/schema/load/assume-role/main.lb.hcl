account "a" {
  regions = ["us-east-1"]
  assume_role {
    external_id  = ""
    session_name = "x"
  }
  assume_role {
    role_arn = "arn:aws:iam::111122223333:role/other"
  }
}

account "b" {
  regions = ["us-east-1"]
  assume_role {
    role_arn     = "arn:aws:iam::111122223333:user/lifeboat"
    session_name = "has space"
  }
}

account "c" {
  regions = ["us-gov-west-1"]
  assume_role { role_arn = "arn:aws-us-gov:iam::111122223333:role/path/to/lifeboat" }
}

account "d" {
  regions = ["us-east-1"]
  assume_role {
    role_arn    = "arn:aws:iam::111122223333:role/lifeboat"
    external_id = "hmac-sha256:5bdcc146bf60754e6a042426089575c7"
  }
}

account "e" {
  regions = ["us-east-1"]
  assume_role {
    role_arn    = "arn:aws:iam::111122223333:role/lifeboat"
    external_id = "not allowed; in AWS"
  }
}
