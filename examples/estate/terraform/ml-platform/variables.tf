variable "region" {
  type        = string
  description = "Where the training platform runs."
}

variable "trainers" {
  type    = number
  default = 1
}
