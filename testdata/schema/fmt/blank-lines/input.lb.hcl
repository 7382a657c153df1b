


account "a" {


  regions = ["us-east-1"]



  profile = "p"


}
account "b" {
  regions = ["us-east-1"]
}
# Attached to c (no blank line between).
account "c" {
  regions = ["us-east-1"]
}


# Detached from d.

account "d" {
  regions = ["us-east-1"]
}



