account "main" {
  regions = concat(["us-east-1"], ["eu-west-1"])
  profile = "${var.profile}"
}

account "second" {
  regions = ["us-east-1", upper("eu-west-1"), "%{ if true }x%{ endif }"]
  profile = true ? "a" : "b"
}

policy "web" {
  account     = account.main
  generations = 1 + 1
  description = <<EOT
Hello ${name}
EOT
  enabled     = !false
  instance "i-0123456789abcdef0" {
    exclude_volumes = [for v in ["vol-0123456789abcdef0"] : v]
    region          = local.region
    mode            = ("snapshots")
  }
}

policy "refs" {
  account     = account.main
  generations = 1
  volume "vol-0123456789abcdef0" {
    region = regions[0]
  }
}
