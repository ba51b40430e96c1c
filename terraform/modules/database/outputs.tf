output "address" {
  description = "Host name of the PostgreSQL endpoint."
  value       = module.db.db_instance_address
}

output "port" {
  description = "PostgreSQL port."
  value       = module.db.db_instance_port
}

output "database_name" {
  description = "The ledger's database."
  value       = "ledger"
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret RDS keeps the master credentials in."
  value       = module.db.db_instance_master_user_secret_arn
}

output "security_group_id" {
  description = "The database's security group."
  value       = aws_security_group.this.id
}
