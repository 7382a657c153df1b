lifeboat {
  state {
    path = "b.db"
  }
  state {
    path = "c.db"
  }
}

account "main" {
  regions = ["eu-west-1"]
}

policy "web" {
  account     = account.main
  generations = 3
  select { tag = "web" }
}
