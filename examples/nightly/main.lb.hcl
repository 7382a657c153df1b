# Stop the development machines at night and over the weekend, in Berlin
# time: every instance tagged env=dev (but those tagged keep=on) and the
# reporting database. An instance can opt out on its own with the tag
# lifeboat:resource-control = "no-resource-control".

account "dev" {
  regions = ["eu-central-1"]
}

resource_control_group "nightly" {
  account   = account.dev
  mode      = "on_off"
  time_zone = "Europe/Berlin"
  hibernate = true
  timeout   = "30m"
  rds       = ["reporting"]

  select {
    tag   = "env"
    value = "dev"
  }
  exclude {
    tag   = "keep"
    value = "on"
  }

  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
  window {
    off = "tue 20:00"
    on  = "wed 07:00"
  }
  window {
    off = "wed 20:00"
    on  = "thu 07:00"
  }
  window {
    off = "thu 20:00"
    on  = "fri 07:00"
  }
  window {
    off = "fri 20:00"
    on  = "mon 07:00"
  }
}
