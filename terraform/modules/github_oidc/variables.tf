variable "url" {
  description = "Issuer URL of GitHub Actions' OIDC tokens."
  type        = string
  default     = "https://token.actions.githubusercontent.com"
}
