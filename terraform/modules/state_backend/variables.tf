variable "bucket" {
  description = "Name of the state bucket (globally unique, e.g. flowforge-tfstate-ACCOUNT_ID)."
  type        = string
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket with every state version in it (tests only)."
  type        = bool
  default     = false
}

variable "noncurrent_version_days" {
  description = "Days superseded state versions are kept (the way back from a bad apply)."
  type        = number
  default     = 90
}

variable "deny_insecure_transport" {
  description = "Bucket policy refusing every request without TLS. Off only for emulators that apply a policy's Deny without its conditions (moto; docs/terraform.md)."
  type        = bool
  default     = true
}
