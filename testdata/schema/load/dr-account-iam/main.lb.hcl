account "main" {
  regions = ["us-east-1"]
  manage_role {
    name    = "lifeboat-dr"
    trusted = account.vault
  }
  secured {
    prohibited = ["ec2:DeleteSnapshot"]
  }
}

account "vault" {
  type    = "dr"
  regions = ["us-east-1"]
  manage_role {
    name    = "has space"
    trusted = account.vault
  }
  manage_role {
    name    = "second"
    trusted = account.main
  }
  secured {
    prohibited  = ["ec2:DeleteSnapshot", "DeleteSnapshot", "ec2:DeleteSnapshot", "EC2:Delete"]
    check_every = "10s"
  }
}

account "vault2" {
  type    = "dr"
  regions = ["us-east-1"]
  manage_role {
    trusted = account.mian
  }
  secured {
    prohibited = []
  }
}

account "vault3" {
  type    = "dr"
  regions = ["us-east-1"]
  manage_role {
    name    = "lifeboat-dr"
    trusted = "main"
    extra   = 1
  }
  secured {
    check_every = "often"
  }
}
