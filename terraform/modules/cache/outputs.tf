output "primary_endpoint" {
  description = "Host name of the primary (follows failover)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "secret_arn" {
  description = "Secrets Manager secret with the AUTH token and the rediss:// URL (key url)."
  value       = aws_secretsmanager_secret.redis.arn
}

output "security_group_id" {
  description = "The cache's security group."
  value       = aws_security_group.this.id
}
