variable "name" {
  description = "Identifier of the RDS instance."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "db_subnet_group_name" {
  description = "Subnet group over the isolated database subnets (three zones)."
  type        = string
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect on 5432 (the EKS nodes')."
  type        = list(string)
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "allocated_storage_gib" {
  description = "Initial storage; storage autoscaling grows it up to max_allocated_storage_gib."
  type        = number
  default     = 50
}

variable "max_allocated_storage_gib" {
  description = "Upper bound of storage autoscaling."
  type        = number
  default     = 500
}

variable "backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
  default     = 14
}

variable "kms_key_arn" {
  description = "Key for storage, Performance Insights, the master secret and the log groups."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
