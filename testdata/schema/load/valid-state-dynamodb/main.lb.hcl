# The state in a DynamoDB table shared by several workspaces, reached with
# the credentials of the ops account.
lifeboat {
  state {
    backend   = "dynamodb"
    table     = "lifeboat-state"
    region    = "us-east-1"
    account   = account.ops
    workspace = "prod"
  }
}

account "ops" {
  regions = ["us-east-1"]
}

account "main" {
  regions = ["eu-west-1"]
}

policy "web" {
  account     = account.main
  generations = 2
  instance "i-0123456789abcdef0" {}
}
