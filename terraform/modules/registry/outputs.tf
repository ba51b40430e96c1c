output "repository_url" {
  description = "Where the pipeline pushes and the chart pulls (image.repository)."
  value       = aws_ecr_repository.this.repository_url
}

output "repository_arn" {
  description = "The repository (for the CI role's push permission)."
  value       = aws_ecr_repository.this.arn
}
