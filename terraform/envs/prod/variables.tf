variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Environment name: prefix of every resource."
  type        = string
  default     = "ledger-prod"
}

variable "availability_zones" {
  description = "The three zones, named explicitly: a voter's volume lives in one zone, so the set must not change under it."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
}

variable "vpc_cidr" {
  description = "The VPC's range."
  type        = string
  default     = "10.40.0.0/16"
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.33"
}

variable "endpoint_public_access_cidrs" {
  description = "Networks that may reach the EKS API publicly (e.g. the CI runners' egress); empty keeps it private."
  type        = list(string)
  default     = []
}

variable "node_instance_types" {
  description = "Node instance types: one voter per node, so CPU and memory for one voter plus the system pods."
  type        = list(string)
  default     = ["m6i.large"]
}

variable "database_instance_class" {
  description = "RDS instance class of the archiver's PostgreSQL."
  type        = string
  default     = "db.m6g.large"
}

variable "cache_node_type" {
  description = "ElastiCache node type of the read cache."
  type        = string
  default     = "cache.m6g.large"
}

variable "ledger_namespace" {
  description = "Namespace the ledger chart is installed in."
  type        = string
  default     = "ledger"
}

variable "ledger_release" {
  description = "Helm release name of the ledger (its StatefulSet has this name)."
  type        = string
  default     = "ledger"
}

variable "alb_arn_suffix" {
  description = "ARN suffix (app/NAME/ID) of the API's ALB once the chart's Ingress made it; enables the latency alarm."
  type        = string
  default     = ""
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic."
  type        = list(string)
  default     = []
}
