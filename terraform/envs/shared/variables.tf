variable "region" {
  description = "AWS region of the registry (the environments pull from it)."
  type        = string
  default     = "eu-west-1"
}

variable "cost_center" {
  description = "Value of the CostCenter tag."
  type        = string
  default     = "flowforge"
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose main branch builds and pushes the images."
  type        = string
  default     = "flowforge/flowforge"
}

variable "pull_account_ids" {
  description = "AWS accounts of the environments when they are not this account (they pull and describe images)."
  type        = list(string)
  default     = []
}

variable "force_delete_repositories" {
  description = "Let destroy delete repositories holding images (tests only)."
  type        = bool
  default     = false
}
