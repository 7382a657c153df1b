# A team's workspace: the state lives in a DynamoDB table in the ops
# account, so pull-request CI plans, the merge job applies, and runners on
# two hosts take turns leading, all on the same state.

lifeboat {
  state {
    backend   = "dynamodb"
    table     = "lifeboat-state"
    region    = "us-east-1"
    account   = account.ops
    workspace = "prod"
  }
}

# Holds the state table; nothing in it is backed up.
account "ops" {
  regions = ["us-east-1"]
}

account "prod" {
  regions = ["us-east-1", "eu-west-1"]
  assume_role {
    role_arn = "arn:aws:iam::111111111111:role/lifeboat"
  }
}

schedule "nightly" {
  start = "2026-12-01T01:00"
  every = "24h"
}

policy "databases" {
  account     = account.prod
  generations = 14
  schedules   = [schedule.nightly]
  select {
    kinds = ["rds", "aurora"]
    tag   = "backup"
    value = "nightly"
  }
}

policy "app" {
  account     = account.prod
  generations = 7
  schedules   = [schedule.nightly]
  select {
    tag   = "team"
    value = "app"
  }
}
