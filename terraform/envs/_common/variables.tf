# The same variables in every environment root (envs/dev, envs/staging, envs/prod); their values
# are in each root's terraform.tfvars. The enable_* switches exist for emulators that lack an API
# (terraform/test/moto.tfvars, docs/terraform.md) and stay on for AWS.

variable "region" {
  description = "AWS region of the environment."
  type        = string
  default     = "eu-west-1"
}

variable "azs" {
  description = "Availability zones of the region to use."
  type        = list(string)
}

variable "vpc_cidr" {
  description = "The VPC's /16 (the k8s overlay of the environment uses the same ranges)."
  type        = string
}

variable "single_nat_gateway" {
  description = "One NAT gateway instead of one per zone."
  type        = bool
}

variable "log_retention_days" {
  description = "Days every CloudWatch log group keeps its logs."
  type        = number
}

variable "alert_emails" {
  description = "E-mail addresses receiving alarms and budget alerts."
  type        = list(string)
  default     = []
}

variable "monthly_budget_usd" {
  description = "Monthly cost budget in US dollars."
  type        = number
}

variable "cost_center" {
  description = "Value of the CostCenter tag on every resource (cost allocation)."
  type        = string
  default     = "flowforge"
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose workflows may assume the environment's roles (plan, apply, deploy)."
  type        = string
  default     = "flowforge/flowforge"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository is OWNER/NAME."
  }
}

variable "state_bucket" {
  description = "S3 bucket of the Terraform state (terraform/bootstrap output state_bucket; also given to terraform init)."
  type        = string
}

variable "state_kms_key_arn" {
  description = "KMS key of the state bucket (terraform/bootstrap output state_kms_key_arn)."
  type        = string
  default     = null
}

variable "ecr_registry_id" {
  description = "AWS account holding the image repositories (terraform/envs/shared); null: this account."
  type        = string
  default     = null
}

variable "eks_public_access_cidrs" {
  description = "Ranges that may reach the Kubernetes API's public endpoint (IAM authenticates every request)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "eks_node_groups" {
  description = "EKS managed node groups (see modules/eks)."
  type = map(object({
    instance_types = list(string)
    capacity_type  = optional(string, "ON_DEMAND")
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gib  = optional(number, 40)
    labels         = optional(map(string), {})
  }))
}

variable "eks_admin_principal_arns" {
  description = "IAM roles of the operators, given cluster admin on the Kubernetes API."
  type        = list(string)
  default     = []
}

variable "db_ca_cert_identifier" {
  description = "CA of the database's server certificate; null leaves it to RDS (whose default for new instances is the same rds-ca-rsa2048-g1)."
  type        = string
  default     = "rds-ca-rsa2048-g1"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "db_multi_az" {
  description = "Multi-AZ database."
  type        = bool
}

variable "db_deletion_protection" {
  description = "Database deletion protection."
  type        = bool
}

variable "db_backup_retention_days" {
  description = "Database backup retention and point-in-time recovery window, in days."
  type        = number
}

variable "db_max_allocated_storage" {
  description = "Database storage autoscaling ceiling in GiB."
  type        = number
  default     = 100
}

variable "db_rotation_function_source" {
  description = "Where the rotation function comes from: \"sar\" or \"package\"."
  type        = string
  default     = "sar"
}

variable "db_rotation_function_package_file" {
  description = "Zip of the rotation function when db_rotation_function_source is \"package\"."
  type        = string
  default     = null
}

variable "lambda_api_package_file" {
  description = "First deployment package of the API on Lambda; null: no Lambda API (docs/deploy.md)."
  type        = string
  default     = null
}

variable "enable_budget" {
  description = "Create the AWS Budgets budget."
  type        = bool
  default     = true
}

variable "enable_eks_node_groups" {
  description = "Create the EKS managed node groups."
  type        = bool
  default     = true
}

variable "enable_eks_addons" {
  description = "Install the EKS add-ons."
  type        = bool
  default     = true
}

variable "enable_eks_access_entries" {
  description = "Create the EKS access entries."
  type        = bool
  default     = true
}

variable "enable_db_rotation" {
  description = "Scheduled rotation of the database credentials."
  type        = bool
  default     = true
}

variable "enable_db_performance_insights" {
  description = "Performance Insights on the database."
  type        = bool
  default     = true
}

variable "enable_lambda_api_codedeploy" {
  description = "CodeDeploy traffic shifting for the Lambda API."
  type        = bool
  default     = true
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can be restored."
  type        = number
  default     = 30
}

variable "force_destroy" {
  description = "Let destroy delete buckets that hold objects (throwaway environments and tests)."
  type        = bool
  default     = false
}
