# An unknown backend: the values are still checked, but not which backend
# they belong to.
lifeboat {
  state {
    backend = "dynamo"
    table   = "lt"
    region  = "us-east-1"
  }
}

account "main" {
  regions = ["us-east-1"]
}
