output "state_bucket" {
  description = "The state bucket: terraform init -backend-config=bucket=... and state_bucket of the environment roots."
  value       = module.state_backend.bucket
}

output "state_kms_key_arn" {
  description = "KMS key of the state bucket (state_kms_key_arn of the environment roots)."
  value       = module.state_backend.kms_key_arn
}

output "github_oidc_provider_arn" {
  description = "ARN of GitHub Actions' OIDC provider (null if it existed already)."
  value       = try(module.github_oidc[0].arn, null)
}
