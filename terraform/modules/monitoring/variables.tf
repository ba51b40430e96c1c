variable "name" {
  description = "Prefix of the topic and alarm names."
  type        = string
}

variable "cluster_name" {
  description = "EKS cluster whose Container Insights metrics are watched."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the ledger release."
  type        = string
}

variable "workload_name" {
  description = "The ledger StatefulSet's name (Container Insights' PodName dimension: the workload, not the pod)."
  type        = string
}

variable "alb_arn_suffix" {
  description = "ARN suffix (app/NAME/ID) of the ALB in front of the API, created by the chart's Ingress through the AWS Load Balancer Controller; empty until it exists, and so no latency alarm."
  type        = string
  default     = ""
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each confirms by mail)."
  type        = list(string)
  default     = []
}

variable "thresholds" {
  description = "The original design's alarm thresholds."
  type = object({
    cpu_percent        = number
    memory_percent     = number
    restarts_in_10m    = number
    latency_p99_second = number
  })
  default = {
    cpu_percent        = 80
    memory_percent     = 60
    restarts_in_10m    = 1
    latency_p99_second = 2
  }
}

variable "kms_key_arn" {
  description = "Key that encrypts the alarm topic."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
