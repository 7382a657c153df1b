# Policy names become part of AMI names and DB snapshot identifiers.
account "main" {
  regions = ["us-east-1"]
}

policy "web-app" {
  account     = account.main
  generations = 1
  instance "i-0123456789abcdef0" {}
}

# Only case, "_" and repeated hyphens set it apart from web-app.
policy "Web_App" {
  account     = account.main
  generations = 1
  instance "i-0123456789abcdef0" {}
}

policy "web--app" {
  account     = account.main
  generations = 1
  instance "i-0123456789abcdef0" {}
}

policy "abcdefghij-abcdefghij-abcdefghij-abcdefghij" {
  account     = account.main
  generations = 1
  instance "i-0123456789abcdef0" {}
}

# At the limit: 40 characters.
policy "abcdefghij-abcdefghij-abcdefghij-abcdefg" {
  account     = account.main
  generations = 1
  instance "i-0123456789abcdef0" {}
}
