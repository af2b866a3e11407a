output "repository_urls" {
  description = "Repository URLs by name (REGISTRY/NAME)."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "repository_arns" {
  description = "Repository ARNs by name."
  value       = { for k, r in aws_ecr_repository.this : k => r.arn }
}

output "registry_id" {
  description = "The registry (account) id."
  value       = local.account_id
}

output "push_role_arn" {
  description = "Role the build workflow assumes (GitHub variable AWS_BUILD_ROLE_ARN)."
  value       = aws_iam_role.push.arn
}
