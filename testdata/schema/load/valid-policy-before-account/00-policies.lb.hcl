# Sorted before the file declaring the account: references still resolve.
policy "web" {
  account     = account.main
  generations = 14
  instance "i-0123456789abcdef0" {}
}
