output "region" {
  description = "AWS region."
  value       = var.region
}

output "cluster_name" {
  description = "EKS cluster: aws eks update-kubeconfig --name <this>."
  value       = module.cluster.cluster_name
}

output "ecr_repository_url" {
  description = "Image repository (chart: image.repository; Jenkins: ECR_REPOSITORY)."
  value       = module.registry.repository_url
}

output "storage_class_name" {
  description = "StorageClass of the voters' volumes (chart: persistence.storageClass)."
  value       = kubernetes_storage_class_v1.gp3.metadata[0].name
}

output "vpc_cidr_block" {
  description = "The VPC's range (chart: the ALB's ipBlock in networkPolicy.api.from)."
  value       = module.network.vpc_cidr_block
}

output "redis_primary_endpoint" {
  description = "Redis primary endpoint (TLS, AUTH)."
  value       = module.cache.primary_endpoint
}

output "redis_secret_arn" {
  description = "Secrets Manager secret whose `url` key becomes the chart's cache Secret (redis-url)."
  value       = module.cache.secret_arn
}

output "database_address" {
  description = "PostgreSQL endpoint for the archiver's DATABASE_URL."
  value       = module.database.address
}

output "database_master_secret_arn" {
  description = "Secrets Manager secret with the RDS master credentials (for creating the archiver's own user)."
  value       = module.database.master_user_secret_arn
}

output "alarm_topic_arn" {
  description = "SNS topic of every CloudWatch alarm."
  value       = module.monitoring.topic_arn
}

output "load_balancer_controller_role_arn" {
  description = "IRSA role for the AWS Load Balancer Controller's service account (kube-system/aws-load-balancer-controller)."
  value       = module.cluster.load_balancer_controller_role_arn
}

output "helm_values" {
  description = "Chart values for this environment, on top of values-production.yaml: terraform output -raw helm_values > prod-values.yaml"
  value = yamlencode({
    image = {
      repository = module.registry.repository_url
    }
    persistence = {
      storageClass = kubernetes_storage_class_v1.gp3.metadata[0].name
    }
    networkPolicy = {
      api = {
        from = [
          { namespaceSelector = { matchLabels = { "ledger-client" = "true" } } },
          { namespaceSelector = { matchLabels = { "kubernetes.io/metadata.name" = "monitoring" } } },
          { ipBlock = { cidr = module.network.vpc_cidr_block } },
        ]
      }
    }
  })
}
