output "bucket" {
  description = "The state bucket: `bucket` in each environment's backend.hcl."
  value       = aws_s3_bucket.state.id
}

output "kms_key_arn" {
  description = "The state key: `kms_key_id` in each environment's backend.hcl."
  value       = aws_kms_key.state.arn
}
