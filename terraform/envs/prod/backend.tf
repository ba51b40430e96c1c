# State in S3, encrypted with the bootstrap's KMS key, locked by S3's native lock file
# (no DynamoDB table). The bucket, region and key come from backend.hcl (see
# backend.hcl.example), made by terraform/bootstrap:
#
#   terraform init -backend-config=backend.hcl
terraform {
  backend "s3" {
    key          = "ledger/prod/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}
