account "main" {
  regions = ["us-east-1"]
}

policy "badmode" {
  account     = account.main
  generations = 1
  dr {
    regions = ["us-west-2"]
    lock {
      mode     = "strict"
      duration = "30d"
    }
  }
}

policy "toolong" {
  account     = account.main
  generations = 1
  dr {
    regions = ["us-west-2"]
    lock {
      mode     = "compliance"
      duration = "36501d"
      cool_off = "73h"
    }
  }
}

policy "zero" {
  account     = account.main
  generations = 1
  dr {
    regions = ["us-west-2"]
    lock {
      mode     = "governance"
      duration = "0d"
    }
  }
}

policy "partday" {
  account     = account.main
  generations = 1
  dr {
    regions = ["us-west-2"]
    lock {
      mode     = "governance"
      duration = "36h"
    }
  }
}

policy "govcool" {
  account     = account.main
  generations = 1
  dr {
    regions = ["us-west-2"]
    lock {
      mode     = "governance"
      duration = "30d"
      cool_off = "24h"
    }
  }
}

policy "missing" {
  account     = account.main
  generations = 1
  dr {
    regions = ["us-west-2"]
    lock {
      cool_off = "soon"
    }
  }
}
