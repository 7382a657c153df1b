account "main" {
	regions = ["us-east-1"]
        profile = "p"
  assume_role {
 role_arn = "arn:aws:iam::111122223333:role/x"
          }
      }
policy "p" {
    instance "i-0123abcd" {
  region = "us-east-1"
            }
}
