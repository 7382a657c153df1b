# Without table and region, and an empty workspace; the default credential
# chain (no account) is fine.
lifeboat {
  state {
    backend   = "dynamodb"
    workspace = ""
  }
}

account "main" {
  regions = ["us-east-1"]
}
