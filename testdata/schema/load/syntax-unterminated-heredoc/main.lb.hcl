policy "web" {
  description = <<EOT
    no end marker
  EOTX
}
