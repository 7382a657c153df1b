schedule "zone" {
  time_zone = "Europe/Berlim"
  start     = "2026-01-05 00:17"
  every     = "1.5h"
}

schedule "weekly" {
  time_zone = "europe/berlin"
  start     = "2026-01-05T10:00"
  every     = "1w"
  days      = ["mon", "funday", "mon"]
  expires   = "2026-01-05T10:00"
}

schedule "nodays" {
  start = "2026-01-05T10:00"
  every = "0d"
  days  = []
}

schedule "blocked" {
  start = "2026-01-05T10:00"
  every = "1d"
  days  = ["mon", "tue"]
  disable {
    day  = "mon"
    from = "09:00"
    to   = "11:00"
  }
  disable {
    day  = "tue"
    from = "10:00"
    to   = "10:30"
  }
}

schedule "week_off" {
  start = "2026-01-05T10:00"
  every = "15m"
  disable {
    day  = "all"
    from = "12:00"
    to   = "08:00"
  }
  disable {
    day  = "all"
    from = "07:00"
    to   = "13:00"
  }
}

schedule "times" {
  start = "2026-01-05T10:00"
  every = "2h"
  disable {
    day  = "someday"
    from = "25:00"
    to   = "9:00"
  }
  disable {
    from = "10:00"
  }
}

schedule "fortnight" {
  start = "2026-01-05T10:00"
  every = "2w"
  disable {
    day  = "mon"
    from = "09:00"
    to   = "12:00"
  }
}

account "main" {
  regions = ["us-east-1"]
}

policy "p" {
  account     = account.main
  generations = 1
  schedules   = [schedule.nightly, "zone", schedule.zone, schedule.zone, account.main]
  select { tag = "a" }
}

policy "q" {
  account     = account.main
  generations = 1
  schedules   = schedule.weekly
  select { tag = "a" }
}

schedule "fortnight" {
  start = "2026-01-05T11:00"
  every = "2w"
}
