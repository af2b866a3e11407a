variable "name" {
  description = "Name prefix of every resource, e.g. flowforge-prod."
  type        = string
}

variable "cidr" {
  description = "The VPC's IPv4 range, a /16. Subnets are carved from it at fixed offsets that k8s/overlays/<env> repeat in their NetworkPolicies: database subnets in x.y.32.0/20, interface endpoints in x.y.48.0/24."
  type        = string

  validation {
    condition     = can(cidrhost(var.cidr, 0)) && endswith(var.cidr, "/16")
    error_message = "cidr must be an IPv4 /16, e.g. 10.10.0.0/16."
  }
}

variable "azs" {
  description = "Availability zones, one subnet of each kind per zone (three for production)."
  type        = list(string)

  validation {
    condition     = length(var.azs) >= 2 && length(var.azs) <= 3
    error_message = "Give two or three availability zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper; dev) instead of one per zone (survives a zone outage)."
  type        = bool
  default     = false
}

variable "interface_endpoints" {
  description = "AWS services reached through interface VPC endpoints with private DNS (no NAT traffic, and the pods' NetworkPolicies allow only these subnets on 443). rds: the rotation function reads the database's address from the RDS API (the RDS-managed master secret holds only user and password)."
  type        = list(string)
  default     = ["secretsmanager", "sts", "kms", "ecr.api", "ecr.dkr", "logs", "rds"]
}

variable "flow_log_retention_days" {
  description = "Days the VPC flow logs are kept in CloudWatch Logs."
  type        = number
  default     = 365
}

variable "logs_kms_key_arn" {
  description = "KMS key that encrypts the flow log group."
  type        = string
}

variable "cluster_name" {
  description = "EKS cluster name, for the subnet tags the AWS Load Balancer Controller discovers subnets by; null leaves them out."
  type        = string
  default     = null
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary put on every IAM role of the module (the environment's workload boundary, modules/iam); null: none."
  type        = string
  default     = null
}
