variable "name" {
  description = "Name prefix of every resource and the DB instance identifier, e.g. flowforge-prod."
  type        = string
}

variable "secret_prefix" {
  description = "Path prefix of the database secrets' names, e.g. flowforge/prod: the secrets are PREFIX/db (application role) and PREFIX/db-owner (schema owner)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "subnet_ids" {
  description = "Database subnets (one per zone; no route out)."
  type        = list(string)
}

variable "client_cidrs" {
  description = "Ranges allowed to connect on 5432: the private subnets (EKS pods, Lambda functions, the rotation function)."
  type        = list(string)
}

variable "endpoint_subnets_cidr" {
  description = "Range of the interface endpoint subnets, which the rotation function reaches Secrets Manager through."
  type        = string
}

variable "rotation_subnet_ids" {
  description = "Subnets the rotation function runs in (the private subnets)."
  type        = list(string)
}

variable "engine_version" {
  description = "PostgreSQL version: a major version (minor versions are upgraded automatically in the maintenance window)."
  type        = string
  default     = "16"
}

variable "ca_cert_identifier" {
  description = "CA of the instance's server certificate (clients verify it against the RDS global bundle). rds-ca-rsa2048-g1 is also RDS's default for new instances; null leaves the choice to RDS."
  type        = string
  default     = "rds-ca-rsa2048-g1"
}

variable "instance_class" {
  description = "DB instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "allocated_storage" {
  description = "Initial storage in GiB (gp3)."
  type        = number
  default     = 20
}

variable "max_allocated_storage" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 100
}

variable "multi_az" {
  description = "A synchronous standby in a second zone with automatic failover (production)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (production). Also decides whether a final snapshot is taken on deletion."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated backups, which is also the point-in-time recovery window."
  type        = number
  default     = 14
}

variable "performance_insights_enabled" {
  description = "Performance Insights (7 days, free tier), encrypted with the database key."
  type        = bool
  default     = true
}

variable "monitoring_interval" {
  description = "Seconds between Enhanced Monitoring samples (0 turns it off)."
  type        = number
  default     = 60
}

variable "log_retention_days" {
  description = "Days the PostgreSQL logs are kept in CloudWatch Logs."
  type        = number
  default     = 365
}

variable "logs_kms_key_arn" {
  description = "KMS key of the log groups."
  type        = string
}

variable "secrets_kms_key_arn" {
  description = "KMS key of the secrets (the master user secret too)."
  type        = string
}

variable "alarm_topic_arn" {
  description = "SNS topic of the database alarms."
  type        = string
}

variable "rotation_enabled" {
  description = "Rotate the application and owner credentials on a schedule (alternating users)."
  type        = bool
  default     = true
}

variable "rotation_schedule" {
  description = "When the credentials rotate (Secrets Manager schedule expression)."
  type        = string
  default     = "rate(30 days)"
}

variable "rotation_function_source" {
  description = "Where AWS's rotation function SecretsManagerRDSPostgreSQLRotationMultiUser comes from: \"sar\" deploys it from the Serverless Application Repository (CloudFormation); \"package\" creates the Lambda from rotation_function_package_file (a zip built as in docs/deploy.md)."
  type        = string
  default     = "sar"

  validation {
    condition     = contains(["sar", "package"], var.rotation_function_source)
    error_message = "rotation_function_source is \"sar\" or \"package\"."
  }
}

variable "rotation_function_sar_version" {
  description = "Semantic version of the SAR application SecretsManagerRDSPostgreSQLRotationMultiUser (pinned, so that an apply never changes the function unannounced; 1.1.671 is the version aws-cdk-lib pins; null: the latest)."
  type        = string
  default     = "1.1.671"
}

variable "rotation_function_package_file" {
  description = "Path of the rotation function's zip when rotation_function_source is \"package\"."
  type        = string
  default     = null
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can be restored (0 deletes at once: tests only)."
  type        = number
  default     = 30
}

variable "apply_immediately" {
  description = "Apply instance changes at once instead of in the maintenance window."
  type        = bool
  default     = false
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary put on every IAM role of the module (the environment's workload boundary, modules/iam); null: none."
  type        = string
  default     = null
}
