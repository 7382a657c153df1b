policy "db" {
  account     = account.prod
  generations = 7
  enabled     = false
  description = <<-EOT
    Databases.
      Indented line.
    EOT
  // DESIGN-style compact blocks: several attributes on one line.
  instance "i-0123abcd" { region = "eu-west-2"  volumes = "data"  mode = "ami_reboot" }
  instance "i-0123456789abcdef0" {
    region = "us-east-1"  mode = "initial_ami"
    volumes = "root"
  }
  volume "vol-89abcdef" {
    region = "us-east-1"
  }
  select { tag = "backup" }
}

policy "_vault-copy" {
  account             = account.vault
  generations         = 1.0
  description         = "literal $${not_interpolated} and \"quotes\""
  auto_remove_targets = "alert"
  volume "vol-0123456789abcdef0" { region = "cn-north-1" }
}
