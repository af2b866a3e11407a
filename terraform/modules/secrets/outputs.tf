output "kms_key_arn" {
  description = "ARN of the KMS key of the FlowForge secrets."
  value       = module.kms.arn
}

output "api_tokens_secret_arn" {
  description = "ARN of the API tokens secret."
  value       = aws_secretsmanager_secret.api_tokens.arn
}

output "api_tokens_secret_name" {
  description = "Name of the API tokens secret (FLOWFORGE_API_TOKENS_SECRET=aws-sm:NAME)."
  value       = aws_secretsmanager_secret.api_tokens.name
}
