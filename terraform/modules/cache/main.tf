# Redis for the ledger's account-read cache (`consistency=cached`): a replication group
# with a primary and replicas in other zones, automatic failover, TLS in transit, an AUTH
# token and encryption at rest. It is never on the write path: when it is away, cached
# reads fall back to the node's local state.
#
# The AUTH token is generated here and kept in Secrets Manager together with the URL the
# chart wants (rediss://:TOKEN@HOST:6379); it is also in the Terraform state, which the
# S3 backend encrypts with KMS. Rotate it by tainting random_password.auth: with
# auth_token_update_strategy ROTATE, the old and the new token both work until the chart's
# Secret is updated and the voters restarted (README "Operations").

resource "random_password" "auth" {
  length  = 64
  special = false
}

resource "aws_security_group" "this" {
  name        = "${var.name}-redis"
  description = "Redis for the ledger read cache: 6379 from the EKS nodes only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each = toset(var.client_security_group_ids)

  security_group_id            = aws_security_group.this.id
  description                  = "Redis (TLS) from ${each.value}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_cloudwatch_log_group" "slow_log" {
  name              = "/aws/elasticache/${var.name}/slow-log"
  retention_in_days = 365
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = var.name
  description          = "ledger account-read cache"

  engine               = "redis"
  engine_version       = "7.1"
  parameter_group_name = "default.redis7"
  node_type            = var.node_type
  port                 = 6379
  num_cache_clusters   = var.cache_clusters

  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = var.subnet_group_name
  security_group_ids         = [aws_security_group.this.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  auth_token                 = random_password.auth.result
  auth_token_update_strategy = "ROTATE"

  # The cache holds nothing the ledger cannot rebuild; one daily snapshot is for
  # diagnosis, not recovery.
  snapshot_retention_limit = 1
  snapshot_window          = "02:00-03:00"
  maintenance_window       = "sun:05:30-sun:06:30"

  auto_minor_version_upgrade = true
  apply_immediately          = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.slow_log.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }

  tags = var.tags
}

resource "aws_secretsmanager_secret" "redis" {
  #checkov:skip=CKV2_AWS_57:The AUTH token is rotated through Terraform (taint random_password.auth; ElastiCache's ROTATE strategy keeps both tokens valid meanwhile); a Secrets Manager rotation Lambda would change it behind ElastiCache's back
  name                    = "${var.name}/redis"
  description             = "AUTH token and URL of the ledger's Redis cache (the chart's cache.existingSecret)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "redis" {
  secret_id = aws_secretsmanager_secret.redis.id
  secret_string = jsonencode({
    auth_token       = random_password.auth.result
    primary_endpoint = aws_elasticache_replication_group.this.primary_endpoint_address
    port             = 6379
    url              = "rediss://:${random_password.auth.result}@${aws_elasticache_replication_group.this.primary_endpoint_address}:6379"
  })
}
