# backend left out means sqlite, so a table is misplaced.
lifeboat {
  state {
    table = "lifeboat-state"
  }
}

account "main" {
  regions = ["us-east-1"]
}
