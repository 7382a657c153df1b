account "main" {
  regions = ["eu-central-1"]
}

schedule "hourly" {
  start = "2026-01-05T00:17"
  every = "1h"
  days  = ["mon", "tue", "wed", "thu", "fri"]
  disable {
    day  = "all"
    from = "22:00"
    to   = "06:00"
  }
}

schedule "nightly" {
  time_zone = "Europe/Berlin"
  start     = "2026-01-05T02:30"
  every     = "1d"
  expires   = "2027-01-01T00:00"
}

schedule "monthly" {
  time_zone = "Australia/Adelaide"
  start     = "2026-01-31T23:00"
  every     = "1mo"
  disable {
    day  = "sat"
    from = "00:00"
    to   = "00:00"
  }
}

policy "web" {
  account     = account.main
  generations = 7
  schedules   = [schedule.hourly, schedule.nightly]
  select { tag = "backup" }
}
