

# only


// comments   

