# The VPC over three zones: private subnets for the nodes (/20 each), public subnets for
# NAT gateways and internet-facing load balancers, and isolated subnets for RDS and
# ElastiCache. One NAT gateway per zone, so losing a zone leaves the others' egress.

module "vpc" {
  #checkov:skip=CKV_TF_1:A Terraform Registry module from the terraform-aws-modules namespace, pinned to a major version; the registry serves no commit hashes (run `terraform init -upgrade` deliberately)
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 5.16"

  name = var.name
  cidr = var.cidr
  azs  = var.azs

  private_subnets     = [for i, _ in var.azs : cidrsubnet(var.cidr, 4, i)]
  public_subnets      = [for i, _ in var.azs : cidrsubnet(var.cidr, 8, 48 + i)]
  database_subnets    = [for i, _ in var.azs : cidrsubnet(var.cidr, 8, 52 + i)]
  elasticache_subnets = [for i, _ in var.azs : cidrsubnet(var.cidr, 8, 56 + i)]

  create_database_subnet_group    = true
  create_elasticache_subnet_group = true

  enable_nat_gateway     = true
  single_nat_gateway     = false
  one_nat_gateway_per_az = true

  enable_dns_hostnames = true
  enable_dns_support   = true

  # The default security group allows nothing.
  manage_default_security_group  = true
  default_security_group_ingress = []
  default_security_group_egress  = []

  enable_flow_log                                 = true
  create_flow_log_cloudwatch_log_group            = true
  create_flow_log_cloudwatch_iam_role             = true
  flow_log_max_aggregation_interval               = 60
  flow_log_cloudwatch_log_group_retention_in_days = 365
  flow_log_cloudwatch_log_group_kms_key_id        = var.kms_key_arn

  public_subnet_tags = {
    "kubernetes.io/role/elb"                    = "1"
    "kubernetes.io/cluster/${var.cluster_name}" = "shared"
  }
  private_subnet_tags = {
    "kubernetes.io/role/internal-elb"           = "1"
    "kubernetes.io/cluster/${var.cluster_name}" = "shared"
  }

  tags = var.tags
}
