variable "name" {
  description = "Name of the VPC and prefix of its resources."
  type        = string
}

variable "cidr" {
  description = "The VPC's address range (a /16)."
  type        = string
}

variable "azs" {
  description = "Availability zones, three: one voter, one NAT gateway and one subnet of each tier per zone."
  type        = list(string)

  validation {
    condition     = length(var.azs) == 3
    error_message = "Three availability zones: one per ledger voter."
  }
}

variable "cluster_name" {
  description = "The EKS cluster that will run in this VPC (subnet discovery tags)."
  type        = string
}

variable "kms_key_arn" {
  description = "Key that encrypts the flow log group."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
