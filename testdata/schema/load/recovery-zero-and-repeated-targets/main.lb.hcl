account "main" {
  regions = ["us-east-1"]
}

# Zero makes no sense for any duration of a scenario: a check given no time
# always fails, a drill kept for no time cannot be looked at, and a drill
# every zero seconds never stops.
recovery_scenario "zero" {
  step "db" { rds = "orders" }
  check {
    script  = "check.sh"
    timeout = "0s"
  }
  drill {
    every    = "1d"
    keep_for = "0m"
  }
}

recovery_scenario "zero-every" {
  step "db" { rds = "orders" }
  drill { every = "0h" }
}

# Each target is restored by one step only; the second is reported,
# naming the first. The same identifier as an rds and an aurora target is
# two different resources.
recovery_scenario "twice" {
  step "app" {
    instances = ["i-01234567", "i-89abcdef"]
  }
  step "web" {
    instances = ["i-89abcdef"]
    after     = ["app"]
  }
  step "data" { volumes = ["vol-01234567"] }
  step "more-data" { volumes = ["vol-0123456789abcdef0", "vol-01234567"] }
  step "db" { rds = "orders" }
  step "db-again" { rds = "orders" }
  step "cluster" { aurora = "orders" }
}
