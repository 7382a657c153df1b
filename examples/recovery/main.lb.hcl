# Back up the web tier and its database, and rehearse bringing both back
# every week: the drill restores them, waits for them to run and pass their
# status checks, runs the smoke test, keeps them an hour, then tears down
# exactly what it made.

account "main" {
  regions = ["us-east-1"]
}

schedule "nightly" {
  start = "2026-11-22T01:00"
  every = "1d"
}

policy "web" {
  account     = account.main
  generations = 7
  schedules   = [schedule.nightly]
  rds "orders" { region = "us-east-1" }
  select {
    tag   = "team"
    value = "web"
  }
  exclude {
    tag   = "lifecycle"
    value = "scratch"
  }
}

recovery_scenario "web" {
  step "db" {
    rds = "orders"
  }
  step "app" {
    instances = ["i-0123456789abcdef0"]
    after     = ["db"]
  }

  check {
    script  = "smoke.sh"
    timeout = "10m"
  }
  drill {
    every    = "7d"
    keep_for = "1h"
  }
}
