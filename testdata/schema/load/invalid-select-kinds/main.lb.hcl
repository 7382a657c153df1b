account "main" {
  regions = ["us-east-1"]
}

policy "both" {
  account     = account.main
  generations = 2
  select {
    tag        = "team"
    tag_prefix = "backup:"
  }
}

policy "neither" {
  account     = account.main
  generations = 2
  select {
    value = "web"
  }
}

policy "empty-prefix" {
  account     = account.main
  generations = 2
  select {
    tag_prefix = ""
  }
}

policy "unknown-kind" {
  account     = account.main
  generations = 2
  select {
    tag   = "team"
    kinds = ["instance", "volumes"]
  }
}

policy "no-kinds" {
  account     = account.main
  generations = 2
  select {
    tag   = "team"
    kinds = []
  }
}

policy "repeated-kind" {
  account     = account.main
  generations = 2
  select {
    tag   = "team"
    kinds = ["rds", "volume", "rds"]
  }
}

policy "exclude-kinds" {
  account     = account.main
  generations = 2
  select {
    tag = "team"
  }
  exclude {
    tag_prefix = "skip:"
    kinds      = ["volume"]
  }
}

policy "exclude-neither" {
  account     = account.main
  generations = 2
  select {
    tag = "team"
  }
  exclude {
    value = "prod"
  }
}

resource_control_group "nightly" {
  account   = account.main
  mode      = "on_off"
  region    = "us-east-1"
  instances = ["i-0123456789abcdef0"]
  select {
    tag   = "power"
    kinds = ["rds"]
  }
  select {
    tag_prefix = "power:"
  }
  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
}
