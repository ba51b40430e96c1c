variable "region" {
  description = "Region of the state bucket (the environments' region)."
  type        = string
}

variable "bucket_name" {
  description = "Globally unique name of the state bucket, e.g. ledger-terraform-state-<account id>."
  type        = string
}
