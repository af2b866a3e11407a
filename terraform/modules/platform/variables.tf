variable "environment" {
  description = "Environment name: dev, staging or prod. Names are flowforge-ENV, secrets flowforge/ENV/*."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment is a short lowercase name, e.g. dev."
  }
}

variable "azs" {
  description = "Availability zones (three in staging and prod)."
  type        = list(string)
}

variable "vpc_cidr" {
  description = "The VPC's /16 (k8s/overlays/<env> use the same ranges in their NetworkPolicies: dev 10.10, staging 10.20, prod 10.30)."
  type        = string
}

variable "single_nat_gateway" {
  description = "One NAT gateway instead of one per zone."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Days every CloudWatch log group keeps its logs."
  type        = number
  default     = 365
}

variable "alert_emails" {
  description = "E-mail addresses that receive alarms and budget alerts."
  type        = list(string)
  default     = []
}

variable "monthly_budget_usd" {
  description = "Monthly cost budget of the environment in US dollars."
  type        = number
}

variable "enable_budget" {
  description = "Create the AWS Budgets budget (off only where the API is missing, e.g. an emulator)."
  type        = bool
  default     = true
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose workflows may assume the environment's roles."
  type        = string
  default     = "flowforge/flowforge"
}

variable "github_deploy_environment" {
  description = "GitHub Environment of this environment's deploy jobs."
  type        = string
}

variable "github_infra_environment" {
  description = "GitHub Environment of this environment's terraform apply job."
  type        = string
}

variable "state_bucket" {
  description = "S3 bucket holding the Terraform state (terraform/bootstrap output state_bucket)."
  type        = string
}

variable "state_key" {
  description = "Key of this environment's state object."
  type        = string
}

variable "state_kms_key_arn" {
  description = "KMS key of the state bucket (terraform/bootstrap output state_kms_key_arn)."
  type        = string
  default     = null
}

variable "ecr_repository_arns" {
  description = "ARNs of the image repositories (terraform/envs/shared output repository_arns)."
  type        = list(string)
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.33"
}

variable "eks_public_access_cidrs" {
  description = "Ranges that may reach the Kubernetes API's public endpoint."
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
  description = "IAM principals (roles of the operators) given cluster admin on the Kubernetes API."
  type        = list(string)
  default     = []
}

variable "enable_eks_node_groups" {
  description = "Create the managed node groups."
  type        = bool
  default     = true
}

variable "enable_eks_addons" {
  description = "Install the EKS add-ons."
  type        = bool
  default     = true
}

variable "enable_eks_access_entries" {
  description = "Create the EKS access entries (deploy role, admins)."
  type        = bool
  default     = true
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "db_ca_cert_identifier" {
  description = "CA of the database's server certificate; null leaves it to RDS (whose default for new instances is rds-ca-rsa2048-g1 too)."
  type        = string
  default     = "rds-ca-rsa2048-g1"
}

variable "db_allocated_storage" {
  description = "Initial database storage in GiB."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage" {
  description = "Database storage autoscaling ceiling in GiB."
  type        = number
  default     = 100
}

variable "db_multi_az" {
  description = "Multi-AZ database."
  type        = bool
}

variable "db_deletion_protection" {
  description = "Database deletion protection (and a final snapshot on deletion)."
  type        = bool
}

variable "db_backup_retention_days" {
  description = "Database backup retention (the point-in-time recovery window) in days."
  type        = number
}

variable "db_performance_insights" {
  description = "Performance Insights on the database."
  type        = bool
  default     = true
}

variable "db_rotation_enabled" {
  description = "Scheduled rotation of the database credentials."
  type        = bool
  default     = true
}

variable "db_rotation_function_source" {
  description = "\"sar\" (Serverless Application Repository) or \"package\" (db_rotation_function_package_file)."
  type        = string
  default     = "sar"
}

variable "db_rotation_function_package_file" {
  description = "Zip of SecretsManagerRDSPostgreSQLRotationMultiUser when db_rotation_function_source is \"package\"."
  type        = string
  default     = null
}

variable "lambda_api_package_file" {
  description = "First deployment package of the API on Lambda (zip with bootstrap and rds-global-bundle.pem); null: no Lambda API."
  type        = string
  default     = null
}

variable "lambda_api_codedeploy" {
  description = "Shift the Lambda API's traffic with CodeDeploy."
  type        = bool
  default     = true
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can be restored (0 deletes at once: tests only)."
  type        = number
  default     = 30
}

variable "force_destroy" {
  description = "Let destroy remove buckets with objects (tests and throwaway environments only)."
  type        = bool
  default     = false
}
