account "main" {
  regions = ["us-east-1"]
}

account "other" {
  regions = ["us-east-1"]
}

policy "web" {
  account     = account.main
  generations = 3

  volume "vol-0123456789abcdef0" {}

  dr {
    every       = 0
    timeout     = "1 day"
    regions     = ["us-west-2", "mars-1"]
    generations = 0
    concurrency = 21
    encryption_key_detection = "lenient"
    cross_account {
      to      = account.main
      regions = ["original", "original-2"]
    }
  }
  dr {
    regions = ["eu-west-1"]
  }
}

policy "db" {
  account     = account.main
  generations = 3

  volume "vol-0123456789abcdef1" {}

  dr {
    cross_account {
      to = "vault"
    }
  }
}

policy "copies-to-backup-account" {
  account     = account.main
  generations = 3

  volume "vol-0123456789abcdef2" {}

  dr {
    cross_account {
      to = account.other
    }
  }
}
