output "kms_key_arn" {
  description = "ARN of the KMS key for log groups, the alerts topic and the Loki buckets."
  value       = module.kms.arn
}

output "alerts_topic_arn" {
  description = "ARN of the SNS topic every alarm and the budget publish to."
  value       = aws_sns_topic.alerts.arn
}

output "loki_bucket_prefix" {
  description = "LOKI_BUCKET_PREFIX for k8s/addons/install.sh: the buckets are PREFIX-chunks and PREFIX-ruler."
  value       = local.loki_prefix
}

output "loki_bucket_arns" {
  description = "ARNs of the Loki buckets (chunks, ruler)."
  value       = [for b in aws_s3_bucket.loki : b.arn]
}
