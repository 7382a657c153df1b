account "main" {
	regions = ["us-east-1"]
	/* é, 日本 */ colour = "blue"
}

policy "web" {
  account     = account.nope
  generations = "two"
}
