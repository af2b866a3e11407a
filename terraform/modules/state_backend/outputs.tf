output "bucket" {
  description = "Name of the state bucket (terraform init -backend-config=bucket=...)."
  value       = aws_s3_bucket.this.id
}

output "kms_key_arn" {
  description = "ARN of the state bucket's KMS key."
  value       = module.kms.arn
}
