variable "name" {
  description = "Name prefix of the roles, e.g. flowforge-prod (the IRSA roles are NAME-api, NAME-worker, ... as k8s/overlays/<env>/serviceaccounts.yaml expects)."
  type        = string
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose workflows may assume the roles."
  type        = string
}

variable "github_oidc_provider_arn" {
  description = "ARN of the account's GitHub Actions OIDC provider (terraform/bootstrap creates it)."
  type        = string
}

variable "github_deploy_environment" {
  description = "GitHub Environment of the deploy jobs (e.g. production, with required reviewers): the deploy role trusts only jobs running in it."
  type        = string
}

variable "github_infra_environment" {
  description = "GitHub Environment of the terraform apply job (e.g. infra-production): the apply role trusts only jobs running in it."
  type        = string
}

variable "state_bucket" {
  description = "S3 bucket of the Terraform state (the plan role reads it)."
  type        = string
}

variable "state_key" {
  description = "Key of this environment's state object in state_bucket."
  type        = string
}

variable "state_kms_key_arn" {
  description = "KMS key of the state bucket (null if the bucket uses S3-managed keys)."
  type        = string
  default     = null
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_issuer" {
  description = "The EKS cluster's OIDC issuer without https://."
  type        = string
}

variable "service_accounts" {
  description = "IRSA roles by component (role NAME-COMPONENT): the Kubernetes service account (namespace/name) it trusts and the secrets it may read."
  type = map(object({
    service_account = string
    secret_arns     = list(string)
  }))
}

variable "secrets_kms_key_arn" {
  description = "KMS key of the secrets (Decrypt via Secrets Manager only)."
  type        = string
}

variable "loki_bucket_arns" {
  description = "Loki's S3 buckets (the loki role reads and writes them)."
  type        = list(string)
}

variable "loki_kms_key_arn" {
  description = "KMS key of Loki's buckets."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of the EKS cluster (the deploy role may describe it for kubeconfig)."
  type        = string
}

variable "ecr_repository_arns" {
  description = "ECR repositories the deploy role resolves image digests in."
  type        = list(string)
}

variable "lambda_function_arn" {
  description = "ARN of the API's Lambda function the deploy role updates (null: no Lambda API)."
  type        = string
  default     = null
}

variable "codedeploy_arns" {
  description = "ARNs of the CodeDeploy application and deployment group the deploy role starts deployments in, and of its deployment config (empty: no CodeDeploy)."
  type        = list(string)
  default     = []
}

variable "secret_prefix" {
  description = "Path prefix of the environment's Secrets Manager secrets, e.g. flowforge/prod: the apply role manages secrets under it (and the RDS-managed rds!... secret) and no other."
  type        = string
}

variable "sar_rotation" {
  description = "The rotation function comes from the Serverless Application Repository: the apply role may then run its CloudFormation stack, whose role CloudFormation creates without the workload boundary (boundaries.tf)."
  type        = bool
  default     = true
}
