# File header.
// Second header line.

/* A block comment
   over several lines.   
*/
account /* before label */ "main" /* after label */ { # after brace
  # leading comment
  regions /* before = */ = /* after = */ ["us-east-1"] /* after value */ # and a line comment
  /* inline before */ profile = "p"
  select {
    // nothing but a comment
  }
  # comment before closing brace
} # after closing brace

policy "web" { /* one-line with comment */ }

x { a = 1 /* inner */ }

// Trailing comment at EOF.
