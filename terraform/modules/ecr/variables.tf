variable "name" {
  description = "Name prefix of the module's IAM role and KMS alias, e.g. flowforge-shared."
  type        = string
}

variable "repositories" {
  description = "Repository names, one per image."
  type        = list(string)
  default     = ["flowforge-api", "flowforge-worker", "flowforge-scaler"]
}

variable "keep_images" {
  description = "How many images each repository keeps (older ones expire); signatures and SBOM attestations count as images."
  type        = number
  default     = 300
}

variable "untagged_expiry_days" {
  description = "Days after which untagged images (superseded manifest lists, failed pushes) expire."
  type        = number
  default     = 7
}

variable "pull_account_ids" {
  description = "Other AWS accounts (the environments') whose principals may pull and describe images; the repositories' account needs no entry."
  type        = list(string)
  default     = []
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose build job may push (OIDC)."
  type        = string
}

variable "github_push_subjects" {
  description = "OIDC subject claims (after repo:OWNER/NAME:) allowed to push, e.g. ref:refs/heads/main."
  type        = list(string)
  default     = ["ref:refs/heads/main"]
}

variable "github_oidc_provider_arn" {
  description = "ARN of the account's GitHub Actions OIDC provider (terraform/bootstrap creates it)."
  type        = string
}

variable "force_delete" {
  description = "Let `terraform destroy` delete repositories that still hold images (tests only)."
  type        = bool
  default     = false
}
