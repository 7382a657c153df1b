account "main" {
  regions = ["us-east-1", "us-west-2"]
}

account "vault" {
  type         = "dr"
  regions      = ["us-east-1"]
  allow_delete = false
}

policy "web" {
  account     = account.main
  generations = 3

  volume "vol-0123456789abcdef0" {
    region = "us-east-1"
  }

  dr {
    every                    = 4
    timeout                  = "24h"
    regions                  = ["us-west-2", "eu-west-1"]
    generations              = 14
    concurrency              = 10
    encryption_key_detection = "default_alert"
    cross_account {
      to            = account.vault
      regions       = ["original", "us-west-2"]
      keep_original = false
    }
  }
}
