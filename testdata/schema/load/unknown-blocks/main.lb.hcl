version = 1

schedule "hourly" {
  every = "1h"
}

acount "typo" {
  regions = ["us-east-1"]
}

account "main" {
  regions     = ["us-east-1"]
  assume_role = {}
  region {}
  scan_tags   = true
}

policy "web" {
  account     = account.main
  generations = 2
  enabled {}
  dynamodb "orders" {
    region = "us-east-1"
  }
  instance "i-0123456789abcdef0" {
    disk {}
  }
  select {
    tag = "a"
    key = "b"
  }
}

lifeboat {
  state {
    backend = "sqlite"
    extra {}
  }
  log_level = "debug"
}
