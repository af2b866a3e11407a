variable "region" {
  description = "AWS region of the state bucket."
  type        = string
  default     = "eu-west-1"
}

variable "cost_center" {
  description = "Value of the CostCenter tag (cost allocation)."
  type        = string
  default     = "flowforge"
}

variable "state_bucket" {
  description = "Name of the state bucket; null: flowforge-tfstate-ACCOUNT_ID."
  type        = string
  default     = null
}

variable "create_github_oidc_provider" {
  description = "Create GitHub Actions' OIDC provider in this account (false if the account has one already)."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Let destroy delete the state bucket with its contents (tests only)."
  type        = bool
  default     = false
}

variable "deny_insecure_transport" {
  description = "Refuse requests to the state bucket without TLS (false only for an emulator, docs/terraform.md)."
  type        = bool
  default     = true
}
