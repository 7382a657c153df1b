# One account, one policy: keep the last two backups of a named instance and
# of every instance tagged team=web, taken every six hours by `lifeboat run`.

account "main" {
  regions = ["us-east-1"]
}

schedule "six-hourly" {
  start = "2026-11-22T00:00"
  every = "6h"
}

policy "web" {
  account     = account.main
  generations = 2
  schedules   = [schedule.six-hourly]
  instance "i-0123456789abcdef0" { region = "us-east-1" }
  select {
    tag   = "team"
    value = "web"
  }
  auto_remove_targets = "yes"
}
