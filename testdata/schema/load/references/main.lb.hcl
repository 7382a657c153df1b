account "main" {
  regions = ["us-east-1"]
}

account "vault" {
  type    = "dr"
  regions = ["eu-west-1"]
}

policy "string" {
  account     = "main"
  generations = 1
  select { tag = "a" }
}

policy "other-kind" {
  account     = policy.string
  generations = 1
  select { tag = "a" }
}

policy "bare" {
  account     = account
  generations = 1
  select { tag = "a" }
}

policy "deep" {
  account     = account.main.id
  generations = 1
  select { tag = "a" }
}

policy "typo" {
  account     = account.vualt
  generations = 1
  select { tag = "a" }
}

policy "unknown" {
  account     = account.nope
  generations = 1
  select { tag = "a" }
}

policy "index" {
  account     = account["main"]
  generations = 1
  select { tag = "a" }
}

policy "missing" {
  generations = 1
  select { tag = "a" }
}

policy "weird-string" {
  account     = "not a name"
  generations = 1
  select { tag = "a" }
}
