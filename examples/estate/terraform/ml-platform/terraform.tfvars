region   = "eu-west-1"
trainers = 1
