account "dev" {
  regions = ["eu-central-1", "eu-west-1"]
}

resource_control_group "nightly" {
  account   = account.dev
  mode      = "on_off"
  time_zone = "Europe/Berlin"
  hibernate = true
  timeout   = "30m"
  region    = "eu-central-1"
  instances = ["i-0123456789abcdef0", "i-0123456789abcdef1"]
  rds       = ["reporting"]
  aurora    = ["analytics"]

  select {
    tag   = "env"
    value = "dev"
  }

  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }

  window {
    off = "fri 20:00"
    on  = "mon 07:00"
  }

  auto_remove_targets = "yes"
}

resource_control_group "weekend" {
  account = account.dev
  mode    = "off_only"

  select {
    tag = "stop-at-weekend"
  }

  window {
    off = "sat 01:00"
  }
}

resource_control_group "nightly_tpl" {
  account   = account.dev
  template  = true
  time_zone = "Europe/Berlin"

  exclude {
    tag   = "keep"
    value = "running"
  }

  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
}
