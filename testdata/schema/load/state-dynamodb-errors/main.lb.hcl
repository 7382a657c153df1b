lifeboat {
  state {
    backend   = "dynamodb"
    path      = ".lifeboat/state.db"
    table     = "lifeboat state"
    region    = "US-EAST-1"
    account   = account.opps
    workspace = "prod/eu"
  }
}

account "ops" {
  regions = ["us-east-1"]
}
