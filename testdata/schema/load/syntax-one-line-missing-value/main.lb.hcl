policy "web" {
  select { tag = "a"  value = }
}
