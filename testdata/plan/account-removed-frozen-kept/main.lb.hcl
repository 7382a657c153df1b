lifeboat {
  state {
    path = ".lifeboat/state.db"
  }
}
