variable "name" {
  description = "Name prefix, e.g. flowforge-prod: the function is NAME-api."
  type        = string
}

variable "package_file" {
  description = "Path of the first deployment package, a zip holding `bootstrap` (cargo lambda build --release --output-format zip) and the RDS CA bundle rds-global-bundle.pem. Later code is shipped by the deploy workflow (update-function-code + CodeDeploy); Terraform does not revert it."
  type        = string
}

variable "memory_mb" {
  description = "Memory of the function in MB (CPU scales with it)."
  type        = number
  default     = 512
}

variable "timeout_seconds" {
  description = "Function timeout; API Gateway gives up after 30 s anyway."
  type        = number
  default     = 29
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for (and capping) the API: each holds database connections, so this bounds the connections the Lambda API can open."
  type        = number
  default     = 50
}

variable "vpc_id" {
  description = "VPC of the function."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the function."
  type        = list(string)
}

variable "database_security_group_id" {
  description = "Security group of the database, the function's only destination besides the endpoints."
  type        = string
}

variable "endpoint_subnets_cidr" {
  description = "Range of the interface endpoint subnets (Secrets Manager, KMS)."
  type        = string
}

variable "db_secret_arn" {
  description = "ARN of the application role's database secret."
  type        = string
}

variable "api_tokens_secret_arn" {
  description = "ARN of the API tokens secret."
  type        = string
}

variable "secrets_kms_key_arn" {
  description = "KMS key of the secrets; also encrypts the function's environment."
  type        = string
}

variable "max_task_timeout_seconds" {
  description = "Longest timeout a task created through the function may set. The EKS workers drain for this long on scale-in (k8s/base/worker, FLOWFORGE_SHUTDOWN_GRACE): keep them equal."
  type        = number
  default     = 300

  validation {
    condition     = var.max_task_timeout_seconds >= 1 && var.max_task_timeout_seconds <= 86400 && floor(var.max_task_timeout_seconds) == var.max_task_timeout_seconds
    error_message = "max_task_timeout_seconds must be a whole number of seconds from 1 to 86400."
  }
}

variable "environment" {
  description = "More FLOWFORGE_* settings for the function (the secrets and the CA bundle are set already)."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Days the function's and the HTTP API's logs are kept."
  type        = number
  default     = 365
}

variable "logs_kms_key_arn" {
  description = "KMS key of the log groups."
  type        = string
}

variable "throttle_rate" {
  description = "Steady-state requests per second the HTTP API admits."
  type        = number
  default     = 500
}

variable "throttle_burst" {
  description = "Burst of requests the HTTP API admits."
  type        = number
  default     = 1000
}

variable "enable_codedeploy" {
  description = "Shift traffic between versions with CodeDeploy (canary, rolled back on the alarms). Off: the deploy workflow moves the alias at once."
  type        = bool
  default     = true
}

variable "deployment_config_name" {
  description = "CodeDeploy traffic shifting: 10% for 5 minutes, then 100%."
  type        = string
  default     = "CodeDeployDefault.LambdaCanary10Percent5Minutes"
}

variable "alarm_topic_arn" {
  description = "SNS topic of the function's alarms."
  type        = string
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary put on every IAM role of the module (the environment's workload boundary, modules/iam); null: none."
  type        = string
  default     = null
}
