account "main" {
  description = <<EOT
  keep   
    this indentation

  # not a comment
EOT
  other = <<-EOT
      dedented ${x}  
      EOT
  s = "a # not a comment // nor this /* nor */ ${ "}" }"
  t = "  spaced  "
  list = [<<EOT
in a list
EOT
  , "b"]
}
