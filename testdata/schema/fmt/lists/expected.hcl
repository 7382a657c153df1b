account "main" {
  a = ["us-east-1", "eu-west-1"]
  b = ["x"]
  c = []
  d = []
  e = []
  f = [ # after bracket
    "us-east-1", # first
    # own line

    "eu-west-1", # no comma
    "ap-south-1",

    # before close
  ]
  g = [["a", "b"], ["c"]]
  h = [
    [
      "a",
      "b",
    ],
    "c",
  ]
  i = ["a", /* inline */ "b"]
  j = [
    "x", /* block */
    /* own line */
    "y",
  ]
}
