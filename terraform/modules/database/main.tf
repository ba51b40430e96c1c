# PostgreSQL for the archiver (the reporting system of record): Multi-AZ, encrypted with
# the environment's key, TLS required, 14 days of point-in-time recovery, deletion
# protection, a final snapshot, the master password generated and kept by RDS in Secrets
# Manager (never in Terraform state). The ledger itself never waits on it.

resource "aws_security_group" "this" {
  #checkov:skip=CKV2_AWS_5:Attached to the RDS instance through module.db's vpc_security_group_ids (a registry module checkov does not download)
  name        = "${var.name}-postgres"
  description = "PostgreSQL for the ledger archiver: 5432 from the EKS nodes only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each = toset(var.client_security_group_ids)

  security_group_id            = aws_security_group.this.id
  description                  = "PostgreSQL from ${each.value}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

module "db" {
  #checkov:skip=CKV_TF_1:A Terraform Registry module from the terraform-aws-modules namespace, pinned to a major version; the registry serves no commit hashes (run `terraform init -upgrade` deliberately)
  source  = "terraform-aws-modules/rds/aws"
  version = "~> 6.10"

  identifier = var.name

  engine               = "postgres"
  engine_version       = "16"
  family               = "postgres16"
  major_engine_version = "16"
  instance_class       = var.instance_class

  storage_type          = "gp3"
  allocated_storage     = var.allocated_storage_gib
  max_allocated_storage = var.max_allocated_storage_gib
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  db_name  = "ledger"
  username = "ledger_admin"
  port     = 5432

  manage_master_user_password   = true
  master_user_secret_kms_key_id = var.kms_key_arn

  iam_database_authentication_enabled = true

  multi_az               = true
  db_subnet_group_name   = var.db_subnet_group_name
  vpc_security_group_ids = [aws_security_group.this.id]
  publicly_accessible    = false

  backup_retention_period  = var.backup_retention_days
  backup_window            = "03:00-04:00"
  maintenance_window       = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot    = true
  delete_automated_backups = false
  deletion_protection      = true
  skip_final_snapshot      = false

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = false

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = 7

  monitoring_interval    = 60
  create_monitoring_role = true
  monitoring_role_name   = "${var.name}-rds-monitoring"

  enabled_cloudwatch_logs_exports        = ["postgresql", "upgrade"]
  create_cloudwatch_log_group            = true
  cloudwatch_log_group_retention_in_days = 365
  cloudwatch_log_group_kms_key_id        = var.kms_key_arn

  parameters = [
    { name = "rds.force_ssl", value = "1" },
    { name = "log_min_duration_statement", value = "1000" },
  ]

  tags = var.tags
}
