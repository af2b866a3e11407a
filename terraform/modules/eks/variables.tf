variable "name" {
  description = "Cluster name, e.g. flowforge-prod."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and the nodes (k8s/ is validated against 1.33)."
  type        = string
  default     = "1.33"
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the control plane's network interfaces and the nodes."
  type        = list(string)
}

variable "endpoint_public_access" {
  description = "Whether the Kubernetes API is also reachable from outside the VPC (authenticated by IAM; restricted to public_access_cidrs). GitHub-hosted runners deploy through it; turn it off with self-hosted runners in the VPC."
  type        = bool
  default     = true
}

variable "public_access_cidrs" {
  description = "Ranges that may reach the public Kubernetes API endpoint."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "log_retention_days" {
  description = "Days the control-plane logs are kept."
  type        = number
  default     = 365
}

variable "logs_kms_key_arn" {
  description = "KMS key of the control-plane log group."
  type        = string
}

variable "create_node_groups" {
  description = "Create the managed node groups (off only where the API cannot, e.g. an emulator)."
  type        = bool
  default     = true
}

variable "node_groups" {
  description = "Managed node groups by name."
  type = map(object({
    instance_types = list(string)
    capacity_type  = optional(string, "ON_DEMAND")
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gib  = optional(number, 40)
    labels         = optional(map(string), {})
  }))
  default = {
    default = {
      instance_types = ["m7i.large"]
      min_size       = 2
      max_size       = 6
      desired_size   = 3
    }
  }
}

variable "create_addons" {
  description = "Install the EKS add-ons (vpc-cni with network policies, coredns, kube-proxy, metrics-server, EBS CSI driver)."
  type        = bool
  default     = true
}

variable "create_access_entries" {
  description = "Create the access entries of access_entries (the IAM principals that may use the Kubernetes API)."
  type        = bool
  default     = true
}

variable "access_entries" {
  description = "IAM principals given access to the Kubernetes API, by a short name: the principal and the EKS access policy (cluster-wide, or limited to namespaces)."
  type = map(object({
    principal_arn = string
    policy_arn    = string
    namespaces    = optional(list(string))
  }))
  default = {}
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary put on every IAM role of the module (the environment's workload boundary, modules/iam); null: none."
  type        = string
  default     = null
}
