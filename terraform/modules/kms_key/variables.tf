variable "alias" {
  description = "Alias of the key, without the alias/ prefix."
  type        = string
}

variable "description" {
  description = "What the key encrypts."
  type        = string
}

variable "policy_documents" {
  description = "More key policy statements (policy JSON documents, e.g. for AWS services that encrypt with the key), merged after the account's own."
  type        = list(string)
  default     = []
}
