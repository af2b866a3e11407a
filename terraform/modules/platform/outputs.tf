output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name ...; CLUSTER_NAME of k8s/addons/install.sh)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API."
  value       = module.eks.cluster_endpoint
}

output "vpc_id" {
  description = "VPC id (VPC_ID of k8s/addons/install.sh)."
  value       = module.network.vpc_id
}

output "network_policy_cidrs" {
  description = "The ranges k8s/overlays/<env>/kustomization.yaml patches into its NetworkPolicies."
  value = {
    vpc              = module.network.vpc_cidr
    database_subnets = module.network.database_subnets_cidr
    endpoint_subnets = module.network.endpoint_subnets_cidr
  }
}

output "irsa_role_arns" {
  description = "IRSA roles: api, worker, scaler, migrate (k8s/overlays/<env>/serviceaccounts.yaml), aws-load-balancer-controller and loki (k8s/addons/install.sh)."
  value       = module.iam.irsa_role_arns
}

output "permissions_boundary_arns" {
  description = "The environment's permissions boundaries: workload (every role but the apply role) and apply (the apply role's policy and boundary)."
  value = {
    workload = module.iam.workload_boundary_arn
    apply    = module.iam.apply_policy_arn
  }
}

output "github_role_arns" {
  description = "Roles of the GitHub workflows (plan, apply, deploy): set them as GitHub Environment variables (docs/deploy.md)."
  value       = module.iam.github_role_arns
}

output "secret_names" {
  description = "Secrets Manager names the services are configured with (aws-sm:NAME)."
  value = {
    db         = module.database.app_secret_name
    db_owner   = module.database.owner_secret_name
    api_tokens = module.secrets.api_tokens_secret_name
  }
}

output "database_address" {
  description = "Host name of the database."
  value       = module.database.address
}

output "database_master_secret_arn" {
  description = "ARN of the RDS-managed master secret (only for creating the roles once, docs/deploy.md)."
  value       = module.database.master_user_secret_arn
  sensitive   = true
}

output "alerts_topic_arn" {
  description = "SNS topic of the alarms and the budget."
  value       = module.observability.alerts_topic_arn
}

output "loki_bucket_prefix" {
  description = "LOKI_BUCKET_PREFIX of k8s/addons/install.sh."
  value       = module.observability.loki_bucket_prefix
}

output "lambda_api_endpoint" {
  description = "URL of the API on Lambda (null without it)."
  value       = try(module.lambda_api[0].api_endpoint, null)
}

output "lambda_api_function_name" {
  description = "Function name of the API on Lambda (null without it)."
  value       = try(module.lambda_api[0].function_name, null)
}

output "lambda_api_codedeploy_application" {
  description = "CodeDeploy application of the Lambda API (null without it)."
  value       = try(module.lambda_api[0].codedeploy_application, null)
}
