variable "name" {
  description = "Alias of the key (alias/NAME) and prefix of its description."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
