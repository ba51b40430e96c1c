output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "The API server's endpoint."
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  description = "The API server's CA certificate, base64."
  value       = module.eks.cluster_certificate_authority_data
}

output "oidc_provider_arn" {
  description = "The cluster's IAM OIDC provider (for more IRSA roles)."
  value       = module.eks.oidc_provider_arn
}

output "node_security_group_id" {
  description = "Security group of the nodes (and so of the pods): RDS and ElastiCache admit it."
  value       = module.eks.node_security_group_id
}

output "load_balancer_controller_role_arn" {
  description = "IRSA role for the AWS Load Balancer Controller's service account."
  value       = module.load_balancer_controller_irsa.iam_role_arn
}

output "ebs_csi_role_arn" {
  description = "IRSA role of the EBS CSI driver."
  value       = module.ebs_csi_irsa.iam_role_arn
}

output "cloudwatch_agent_role_arn" {
  description = "IRSA role of the CloudWatch agent (Container Insights)."
  value       = module.cloudwatch_irsa.iam_role_arn
}
