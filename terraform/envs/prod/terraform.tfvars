# Non-secret settings of the production environment. Nothing secret belongs in tfvars: the
# RDS master password is generated and kept by RDS, the Redis AUTH token by this
# configuration, both in Secrets Manager.
region                       = "eu-west-1"
name                         = "ledger-prod"
availability_zones           = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr                     = "10.40.0.0/16"
kubernetes_version           = "1.33"
endpoint_public_access_cidrs = []
node_instance_types          = ["m6i.large"]
database_instance_class      = "db.m6g.large"
cache_node_type              = "cache.m6g.large"
ledger_namespace             = "ledger"
ledger_release               = "ledger"
alarm_emails                 = []
