account "main" {
  regions = ["us-east-1"]
}

policy "everything" {
  account     = account.main
  generations = 2
  select {
    tag   = "team"
    value = "web*"
    kinds = ["rds", "aurora", "volume", "instance"]
  }
  select {
    tag_prefix = "backup:"
    value      = "daily"
  }
  exclude {
    tag_prefix = "skip:"
  }
}
