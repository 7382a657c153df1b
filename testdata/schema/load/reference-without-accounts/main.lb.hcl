policy "web" {
  account     = account.main
  generations = 1
  select { tag = "a" }
}
