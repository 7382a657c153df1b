# DynamoDB keys under the SQLite backend (named, and by default).
lifeboat {
  state {
    backend   = "sqlite"
    table     = "lifeboat-state"
    region    = "us-east-1"
    account   = account.main
    workspace = "prod"
  }
}

account "main" {
  regions = ["us-east-1"]
}
