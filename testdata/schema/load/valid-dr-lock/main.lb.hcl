account "main" {
  regions = ["us-east-1"]
}

account "vault" {
  type    = "dr"
  regions = ["us-east-1"]
}

policy "web" {
  account     = account.main
  generations = 3
  dr {
    regions = ["us-west-2"]
    lock {
      mode     = "governance"
      duration = "30d"
    }
  }
}

policy "ledger" {
  account     = account.main
  generations = 3
  dr {
    cross_account {
      to = account.vault
    }
    lock {
      mode     = "compliance"
      duration = "2w"
    }
  }
}

policy "audit" {
  account     = account.main
  generations = 3
  dr {
    cross_account {
      to = account.vault
    }
    lock {
      mode     = "compliance"
      duration = "36500d"
      cool_off = "24h"
    }
  }
}
