variable "name" {
  description = "Repository name."
  type        = string
}

variable "kms_key_arn" {
  description = "Key that encrypts the images."
  type        = string
}

variable "untagged_expire_days" {
  description = "Days after which untagged images are removed."
  type        = number
  default     = 14
}

variable "images_kept" {
  description = "Most tagged images kept (the newest)."
  type        = number
  default     = 200
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
