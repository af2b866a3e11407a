variable "name" {
  description = "Name prefix of every resource, e.g. flowforge-prod."
  type        = string
}

variable "alert_emails" {
  description = "E-mail addresses subscribed to the alerts topic (each must confirm the subscription mail)."
  type        = list(string)
  default     = []
}

variable "enable_budget" {
  description = "Create the monthly cost budget and its alarms (AWS Budgets)."
  type        = bool
  default     = true
}

variable "monthly_budget_usd" {
  description = "Monthly cost budget in US dollars; alerts at 80% actual and 100% forecast."
  type        = number
  default     = 500
}

variable "budget_cost_filter_tag" {
  description = "Restrict the budget to resources carrying this tag, as KEY$VALUE (e.g. Environment$prod); the tag must be activated as a cost allocation tag. null budgets the whole account."
  type        = string
  default     = null
}

variable "loki_retention_days" {
  description = "Days after which the Loki buckets expire objects (a backstop behind Loki's own retention, 31 days)."
  type        = number
  default     = 45
}

variable "force_destroy_buckets" {
  description = "Let `terraform destroy` delete the Loki buckets with their objects (dev and tests only)."
  type        = bool
  default     = false
}
