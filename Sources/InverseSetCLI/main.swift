print("inverse-set")
