account "main" {
  regions = ["us-east-1"]
}

vpc_capture "prod" {
  account = account.main
}

vpc_clone "west" {
  capture   = vpc_capture.prod
  vpc       = "vpc-0123456789abcdef0"
  to_region = "us-west-2"
}

recovery_scenario "elsewhere" {
  region  = "eu-west-1"
  network = vpc_clone.west
  step "app" {
    instances       = ["i-01234567"]
    subnet          = "sn-01234567"
    security_groups = ["sg-0123", "default"]
    instance_type   = "large"
  }
  step "db" {
    rds   = "orders"
    class = "t3.medium"
  }
}

recovery_scenario "bad-refs" {
  account = account.nowhere
  network = vpc_clone.missing
  region  = "mars-1"
  color   = "blue"
  step "a" { instances = [] }
  step "b" {
    volumes = ["vol-0123456789abcdef0", "snap-01234567"]
    after   = ["a", "c"]
  }
  step "c" {
    instances = ["i-0123456789abcdef0", "i-xyz", "i-0123456789abcdef0"]
  }
  step "e" {
    instances = ["i-0123456789abcdef0"]
    rds       = "orders"
    after     = ["dd"]
  }
  step "d" { after = ["a"] }
  step "a" { rds = "orders" }
  rollback {}
}

recovery_scenario "cycle" {
  from = "dr"
  step "db" {
    rds           = "orders"
    after         = ["app"]
    instance_type = "t3.small"
  }
  step "app" {
    instances = ["i-01234567"]
    after     = ["web"]
    class     = "db.t3.medium"
  }
  step "web" {
    instances = ["i-89abcdef"]
    after     = ["db"]
  }
  step "self" {
    volumes = ["vol-01234567"]
    after   = ["self"]
    subnet  = "subnet-01234567"
  }
  check { timeout = "10 minutes" }
  drill {
    every    = "30m"
    keep_for = "1h"
  }
}

recovery_scenario "cycle" {
  step "x" { aurora = "Bad--name" }
  drill {
    every    = "1d"
    keep_for = "2d"
  }
  drill { every = "2d" }
}

recovery_scenario "empty" {}
