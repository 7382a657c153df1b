account "main" {
  regions = ["us-east-1"]
}

policy "yes" {
  account             = account.main
  generations         = 1
  auto_remove_targets = "yes"

  instance "i-000000ff" {
    region = "us-east-1"
  }
}

policy "alert" {
  account             = account.main
  generations         = 1
  auto_remove_targets = "alert"

  instance "i-000000ff" {
    region = "us-east-1"
  }
}

policy "no" {
  account             = account.main
  generations         = 1
  auto_remove_targets = "no"

  instance "i-000000ff" {
    region = "us-east-1"
  }
}
