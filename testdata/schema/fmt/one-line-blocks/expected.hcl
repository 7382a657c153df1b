policy "web" {
  volume "vol-0123456789abcdef0" { region = "us-east-1" }
  select {
    tag   = "team"
    value = "web*"
  }
  select {
    tag   = "team"
    value = "api"
  }
  instance "i-0123456789abcdef0" {
    region  = "us-east-1"
    volumes = "all"
    mode    = "snapshots"
  }
  select {}
  select {}
  instance "i-0123abcd" {
    exclude_volumes = [
      "vol-0123abcd",
    ]
  }
  account     = account.main
  generations = 2
}

lifeboat {
  state {
    backend = "sqlite"
    path    = ".lifeboat/state.db"
  }
}
