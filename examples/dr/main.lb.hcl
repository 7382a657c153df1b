# A short local history and a long one elsewhere: three backups in the
# workload account, fourteen copies in another region of it, and every
# fourth backup kept for a quarter in a DR account that Lifeboat never
# deletes from. See docs/dr.md.

account "main" {
  regions = ["us-east-1"]
}

account "vault" {
  type         = "dr"
  regions      = ["us-east-1", "us-west-2"]
  allow_delete = false

  assume_role {
    role_arn = "arn:aws:iam::222222222222:role/lifeboat-dr"
  }

  manage_role {
    name    = "lifeboat-dr"
    trusted = account.main
  }

  secured {
    prohibited  = ["ec2:DeleteSnapshot", "ec2:DeregisterImage", "rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot"]
    check_every = "6h"
  }
}

schedule "hourly" {
  start = "2026-01-05T00:17"
  every = "1h"
}

policy "web" {
  account     = account.main
  generations = 3
  schedules   = [schedule.hourly]

  select {
    tag   = "team"
    value = "web"
  }

  dr {
    regions     = ["us-west-2"]
    generations = 14
    timeout     = "24h"

    cross_account {
      to      = account.vault
      regions = ["original"]
    }

    encryption_key_detection = "default_alert"
  }
}
