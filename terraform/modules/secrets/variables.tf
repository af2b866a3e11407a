variable "name" {
  description = "Name prefix of every resource, e.g. flowforge-prod."
  type        = string
}

variable "secret_prefix" {
  description = "Path prefix of the secrets' names, e.g. flowforge/prod (the k8s overlays name flowforge/<env>/api-tokens)."
  type        = string
}

variable "recovery_window_days" {
  description = "Days a deleted secret can be restored (0 deletes at once: tests only)."
  type        = number
  default     = 30
}
