account "main" {
  regions = ["us-east-1"]
}

policy "zero" {
  account     = account.main
  generations = 0
  select { tag = "a" }
}

policy "negative" {
  account     = account.main
  generations = -3
  select { tag = "a" }
}

policy "huge" {
  account     = account.main
  generations = 10001
  select { tag = "a" }
}

policy "max" {
  account     = account.main
  generations = 10000
  select { tag = "a" }
}

policy "exp" {
  account     = account.main
  generations = 1e3
  select { tag = "a" }
}
