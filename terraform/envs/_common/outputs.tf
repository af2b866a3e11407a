output "cluster_name" {
  description = "EKS cluster name."
  value       = module.platform.cluster_name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API."
  value       = module.platform.cluster_endpoint
}

output "vpc_id" {
  description = "VPC id (k8s/addons/install.sh VPC_ID)."
  value       = module.platform.vpc_id
}

output "network_policy_cidrs" {
  description = "Ranges of the k8s overlay's NetworkPolicies."
  value       = module.platform.network_policy_cidrs
}

output "irsa_role_arns" {
  description = "IRSA role ARNs (k8s overlay serviceaccounts.yaml; k8s/addons/install.sh)."
  value       = module.platform.irsa_role_arns
}

output "permissions_boundary_arns" {
  description = "Permissions boundaries: workload (every role but the apply role) and apply (the apply role's policy and boundary)."
  value       = module.platform.permissions_boundary_arns
}

output "github_role_arns" {
  description = "Roles of the GitHub workflows (GitHub Environment variables)."
  value       = module.platform.github_role_arns
}

output "secret_names" {
  description = "Secrets Manager names of the services' secrets."
  value       = module.platform.secret_names
}

output "database_address" {
  description = "Host name of the database."
  value       = module.platform.database_address
}

output "database_master_secret_arn" {
  description = "ARN of the RDS-managed master secret (creating the roles once)."
  value       = module.platform.database_master_secret_arn
  sensitive   = true
}

output "alerts_topic_arn" {
  description = "SNS topic of the alarms and the budget."
  value       = module.platform.alerts_topic_arn
}

output "loki_bucket_prefix" {
  description = "LOKI_BUCKET_PREFIX of k8s/addons/install.sh."
  value       = module.platform.loki_bucket_prefix
}

output "lambda_api_endpoint" {
  description = "URL of the API on Lambda (null without it)."
  value       = module.platform.lambda_api_endpoint
}

output "lambda_api_function_name" {
  description = "Function name of the API on Lambda (null without it)."
  value       = module.platform.lambda_api_function_name
}

output "lambda_api_codedeploy_application" {
  description = "CodeDeploy application of the Lambda API (null without it)."
  value       = module.platform.lambda_api_codedeploy_application
}
