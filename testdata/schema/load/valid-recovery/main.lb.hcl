account "main" {
  regions = ["us-east-1"]
}

account "vault" {
  type    = "dr"
  regions = ["us-west-2"]
}

vpc_capture "prod" {
  account = account.main
}

vpc_clone "prod-west" {
  capture    = vpc_capture.prod
  vpc        = "vpc-0123456789abcdef0"
  to_region  = "us-west-2"
  to_account = account.vault
}

# Everything set: DR copies in the vault, on the cloned network.
recovery_scenario "prod-west" {
  account = account.vault
  region  = "us-west-2"
  from    = "dr"
  network = vpc_clone.prod-west

  step "db" {
    rds   = "orders"
    class = "db.t3.medium"
  }
  step "cache" {
    aurora = "sessions-cluster"
    subnet = "subnet-0123456789abcdef0"
  }
  step "app" {
    instances       = ["i-0123456789abcdef0", "i-0fedcba9"]
    after           = ["db", "cache"]
    instance_type   = "t3.small"
    security_groups = ["sg-0123456789abcdef0", "sg-01234567"]
  }
  step "data" {
    volumes = ["vol-0123456789abcdef0"]
    after   = ["app"]
  }

  check {
    script  = "scripts/smoke.sh"
    timeout = "15m"
  }
  drill {
    every    = "7d"
    keep_for = "2h"
  }
}

# Only what is required: the defaults (local backups, where they were taken,
# check timeout 10m, drill kept 1h).
recovery_scenario "local" {
  step "web" { instances = ["i-01234567"] }
  check { script = "smoke.sh" }
  drill { every = "1d" }
}
