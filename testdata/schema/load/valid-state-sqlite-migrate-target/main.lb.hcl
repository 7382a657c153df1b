# DynamoDB keys beside the SQLite backend: where `state migrate --to dynamodb` copies it.
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
