account "main" {
  regions = ["us-east-1"]
}

policy "web" {
  account     = account.main
  generations = 1

  scripts {
    before   = "scripts/freeze.sh"
    pass_env = ["TEAM_CONTACT", "AWS_PROFILE", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "LIFEBOAT_POLICY", "2FAST", "has-dash"]
  }
}
