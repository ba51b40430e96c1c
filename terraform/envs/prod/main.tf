# The production environment: a VPC over three zones, EKS with one node group per zone,
# RDS PostgreSQL (Multi-AZ) for the archiver, ElastiCache Redis for the read cache, ECR
# for the image, CloudWatch alarms and their SNS topic, and the gp3 StorageClass for the
# voters' volumes (kubernetes.tf). `terraform output helm_values` is the chart's values
# for this environment (README "Operations").

locals {
  tags = {
    project     = "ledger"
    environment = "prod"
    managed-by  = "terraform"
  }
}

module "kms" {
  source = "../../modules/kms"

  name = var.name
  tags = local.tags
}

module "network" {
  source = "../../modules/network"

  name         = var.name
  cidr         = var.vpc_cidr
  azs          = var.availability_zones
  cluster_name = var.name
  kms_key_arn  = module.kms.key_arn
  tags         = local.tags
}

module "cluster" {
  source = "../../modules/eks"

  name                         = var.name
  kubernetes_version           = var.kubernetes_version
  vpc_id                       = module.network.vpc_id
  private_subnet_ids           = module.network.private_subnet_ids
  endpoint_public_access_cidrs = var.endpoint_public_access_cidrs
  node_instance_types          = var.node_instance_types
  # One voter per zone, plus room for a surge node during node group upgrades.
  nodes_per_zone = { desired = 1, min = 1, max = 2 }
  kms_key_arn    = module.kms.key_arn
  tags           = local.tags
}

module "database" {
  source = "../../modules/database"

  name                      = var.name
  vpc_id                    = module.network.vpc_id
  db_subnet_group_name      = module.network.database_subnet_group_name
  client_security_group_ids = [module.cluster.node_security_group_id]
  instance_class            = var.database_instance_class
  kms_key_arn               = module.kms.key_arn
  tags                      = local.tags
}

module "cache" {
  source = "../../modules/cache"

  name                      = var.name
  vpc_id                    = module.network.vpc_id
  subnet_group_name         = module.network.elasticache_subnet_group_name
  client_security_group_ids = [module.cluster.node_security_group_id]
  node_type                 = var.cache_node_type
  kms_key_arn               = module.kms.key_arn
  tags                      = local.tags
}

module "registry" {
  source = "../../modules/registry"

  name        = "ledger"
  kms_key_arn = module.kms.key_arn
  tags        = local.tags
}

module "monitoring" {
  source = "../../modules/monitoring"

  name           = var.name
  cluster_name   = module.cluster.cluster_name
  namespace      = var.ledger_namespace
  workload_name  = var.ledger_release
  alb_arn_suffix = var.alb_arn_suffix
  alarm_emails   = var.alarm_emails
  kms_key_arn    = module.kms.key_arn
  tags           = local.tags
}
