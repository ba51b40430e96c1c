output "vpc_id" {
  description = "The VPC."
  value       = module.vpc.vpc_id
}

output "vpc_cidr_block" {
  description = "The VPC's range (the chart's NetworkPolicy lets an internal ALB in from it)."
  value       = module.vpc.vpc_cidr_block
}

output "private_subnet_ids" {
  description = "Node subnets, one per zone, in the order of var.azs."
  value       = module.vpc.private_subnets
}

output "database_subnet_group_name" {
  description = "RDS subnet group over the isolated database subnets."
  value       = module.vpc.database_subnet_group_name
}

output "elasticache_subnet_group_name" {
  description = "ElastiCache subnet group over the isolated cache subnets."
  value       = module.vpc.elasticache_subnet_group_name
}
