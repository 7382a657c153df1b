# only

// comments
