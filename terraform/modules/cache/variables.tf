variable "name" {
  description = "Replication group id and prefix of its resources."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "subnet_group_name" {
  description = "ElastiCache subnet group over the isolated cache subnets (three zones)."
  type        = string
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect on 6379 (the EKS nodes')."
  type        = list(string)
}

variable "node_type" {
  description = "Cache node type."
  type        = string
}

variable "cache_clusters" {
  description = "Nodes: one primary and the rest replicas, spread over the subnet group's zones."
  type        = number
  default     = 3
}

variable "kms_key_arn" {
  description = "Key for data at rest, the AUTH secret and the slow log."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
