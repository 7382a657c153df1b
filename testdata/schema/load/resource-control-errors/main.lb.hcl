account "dev" {
  regions = ["eu-central-1", "eu-west-1"]
}

resource_control_group "overlapping" {
  account   = account.dev
  region    = "eu-central-1"
  instances = ["i-0123456789abcdef0"]

  window {
    off = "fri 20:00"
    on  = "mon 07:00"
  }

  window {
    off = "sun 22:00"
    on  = "mon 06:00"
  }
}

resource_control_group "close" {
  account   = account.dev
  region    = "eu-central-1"
  instances = ["i-0123456789abcdef0"]

  window {
    off = "mon 20:00"
    on  = "mon 20:30"
  }
}

resource_control_group "off_only" {
  account = account.dev
  mode    = "off_only"
  rds     = ["reporting"]

  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
}

resource_control_group "bad" {
  account   = account.dev
  time_zone = "Europe/Berlinn"

  window {
    off = "monday 20:00"
    on  = "tue 7:00"
  }
}

resource_control_group "first" {
  account   = account.dev
  region    = "eu-west-1"
  instances = ["i-0aaaaaaaaaaaaaaaa"]

  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
}

resource_control_group "second" {
  account   = account.dev
  region    = "eu-west-1"
  instances = ["i-0aaaaaaaaaaaaaaaa"]

  window {
    off = "wed 20:00"
    on  = "thu 07:00"
  }
}

resource_control_group "bad_template" {
  account   = account.dev
  region    = "eu-west-1"
  template  = true
  instances = ["i-0bbbbbbbbbbbbbbbb"]

  select {
    tag = "env"
  }

  window {
    off = "wed 20:00"
    on  = "thu 07:00"
  }
}
