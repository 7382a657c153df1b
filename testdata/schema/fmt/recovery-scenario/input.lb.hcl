recovery_scenario prod-west {
    account = account.vault   # where to recover
  region = "us-west-2"
  from="dr"
  network   = vpc_clone.prod-west
  step "db"  { rds = "orders"  class = "db.t3.medium" }
  step "app" { instances = ["i-0123456789abcdef0", "i-0fedcba9"]  after = ["db"]  instance_type = "t3.small" }
  step "data" {
  volumes = [
  "vol-0123456789abcdef0",
    "vol-01234567",
  ]
  after = ["app"]
  }
  check { script = "scripts/smoke.sh"  timeout = "10m" }   # gets the new ids
  drill { every = "7d"  keep_for = "2h" }
}
