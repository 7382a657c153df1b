policy "db" {
  account     = account.main
  generations = 2