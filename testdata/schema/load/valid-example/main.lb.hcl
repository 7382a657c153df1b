lifeboat {
  state {
    backend = "sqlite"          # sqlite (default) | dynamodb
    path    = ".lifeboat/state.db"
  }
}

account "main" {
  type         = "backup"       # backup | dr ; default backup
  regions      = ["us-east-1"]  # required, non-empty, unique
  profile      = "prod"         # optional
  allow_delete = false          # optional, default true for backup accounts and false for dr
  assume_role {                  # optional
    role_arn     = "arn:aws:iam::111122223333:role/lifeboat"   # required
    external_id  = "..."         # optional
    session_name = "lifeboat"    # optional
  }
}

policy "web" {
  account             = account.main   # required; a reference, not a string
  generations         = 2              # required integer >= 1 (and <= 10000)
  enabled             = true           # optional bool, default true
  description         = "..."          # optional
  auto_remove_targets = "yes"          # no | yes | alert ; default "no"
  instance "i-0123456789abcdef0" {     # any number; label = instance id
    region          = "us-east-1"      # optional if the account has exactly one region
    volumes         = "all"            # all | root | data ; default all
    exclude_volumes = ["vol-0123456789abcdef1"]
    mode            = "snapshots"      # snapshots | initial_ami | ami | ami_reboot
  }
  volume "vol-0123456789abcdef0" { region = "us-east-1" }   # any number, same region rules
  select { tag = "team"  value = "web*" }   # any number; tag required non-empty; value optional
}
