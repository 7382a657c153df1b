account "main" {
  type         = "backup"
  regions      = ["us-east-1"]
  # comment lines do not break a run
  allow_delete = false # trailing comments align too
  profile      = "p"   # here
  assume_role {
    role_arn     = "arn:aws:iam::111122223333:role/lifeboat"
    session_name = "lifeboat"
  }
  a = 1

  blank_line_breaks_the_run = 2
  b                         = 3
  multi = [
    "x",
  ]
  c                = 4
  long_after_multi = 5
}
