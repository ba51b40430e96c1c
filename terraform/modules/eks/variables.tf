variable "name" {
  description = "Name of the EKS cluster."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and nodes."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "private_subnet_ids" {
  description = "Node subnets, one per zone: one managed node group is made per subnet."
  type        = list(string)
}

variable "endpoint_public_access_cidrs" {
  description = "Networks allowed to reach the API server's public endpoint; empty keeps the endpoint private (reach it from inside the VPC: VPN, bastion, CI runner)."
  type        = list(string)
  default     = []
}

variable "node_instance_types" {
  description = "Instance types of the node groups."
  type        = list(string)
}

variable "nodes_per_zone" {
  description = "Nodes in each zone's group: desired, min and max."
  type = object({
    desired = number
    min     = number
    max     = number
  })
}

variable "node_volume_gib" {
  description = "Root volume of each node (images, logs; ledger data lives on its own PVC)."
  type        = number
  default     = 50
}

variable "kms_key_arn" {
  description = "Key for Kubernetes secrets, the control-plane log group and EBS volumes made by the CSI driver."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
