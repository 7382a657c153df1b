# This file parses; its problems are reported next to a.lb.hcl's syntax error.
account "other" {
  regions = ["us-east-1"]
  type    = "vault"
}

# account.elsewhere may be declared in a file that did not parse: no error.
policy "db" {
  account     = account.elsewhere
  generations = 2
  select { tag = "db" }
}
