# One FlowForge environment: every module wired together, so that the roots under envs/ only
# choose sizes and switches. What talks to what: README.md, "Architecture" (the Mermaid diagram);
# docs/terraform.md.

data "aws_iam_openid_connect_provider" "github" {
  url = "https://token.actions.githubusercontent.com"
}

locals {
  name          = "flowforge-${var.environment}"
  secret_prefix = "flowforge/${var.environment}"
  namespace     = "flowforge"
}

module "observability" {
  source = "../observability"

  name                   = local.name
  alert_emails           = var.alert_emails
  enable_budget          = var.enable_budget
  monthly_budget_usd     = var.monthly_budget_usd
  budget_cost_filter_tag = format("Environment$%s", var.environment)
  loki_retention_days    = 45
  force_destroy_buckets  = var.force_destroy
}

module "network" {
  source = "../network"

  name                     = local.name
  cidr                     = var.vpc_cidr
  azs                      = var.azs
  single_nat_gateway       = var.single_nat_gateway
  flow_log_retention_days  = var.log_retention_days
  logs_kms_key_arn         = module.observability.kms_key_arn
  cluster_name             = local.name
  permissions_boundary_arn = module.iam.workload_boundary_arn
}

module "secrets" {
  source = "../secrets"

  name                 = local.name
  secret_prefix        = local.secret_prefix
  recovery_window_days = var.secret_recovery_window_days
}

module "database" {
  source = "../database"

  name                           = local.name
  secret_prefix                  = local.secret_prefix
  vpc_id                         = module.network.vpc_id
  subnet_ids                     = module.network.database_subnet_ids
  client_cidrs                   = module.network.private_subnet_cidrs
  endpoint_subnets_cidr          = module.network.endpoint_subnets_cidr
  rotation_subnet_ids            = module.network.private_subnet_ids
  instance_class                 = var.db_instance_class
  ca_cert_identifier             = var.db_ca_cert_identifier
  allocated_storage              = var.db_allocated_storage
  max_allocated_storage          = var.db_max_allocated_storage
  multi_az                       = var.db_multi_az
  deletion_protection            = var.db_deletion_protection
  backup_retention_days          = var.db_backup_retention_days
  performance_insights_enabled   = var.db_performance_insights
  log_retention_days             = var.log_retention_days
  logs_kms_key_arn               = module.observability.kms_key_arn
  secrets_kms_key_arn            = module.secrets.kms_key_arn
  alarm_topic_arn                = module.observability.alerts_topic_arn
  rotation_enabled               = var.db_rotation_enabled
  rotation_function_source       = var.db_rotation_function_source
  rotation_function_package_file = var.db_rotation_function_package_file
  secret_recovery_window_days    = var.secret_recovery_window_days
  permissions_boundary_arn       = module.iam.workload_boundary_arn
}

module "eks" {
  source = "../eks"

  name                     = local.name
  kubernetes_version       = var.kubernetes_version
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.private_subnet_ids
  public_access_cidrs      = var.eks_public_access_cidrs
  log_retention_days       = var.log_retention_days
  logs_kms_key_arn         = module.observability.kms_key_arn
  create_node_groups       = var.enable_eks_node_groups
  node_groups              = var.eks_node_groups
  create_addons            = var.enable_eks_addons
  create_access_entries    = var.enable_eks_access_entries
  permissions_boundary_arn = module.iam.workload_boundary_arn
  access_entries = merge(
    {
      deploy = {
        principal_arn = module.iam.github_role_arns["deploy"]
        policy_arn    = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
      }
    },
    { for i, arn in var.eks_admin_principal_arns : "admin-${i}" => {
      principal_arn = arn
      policy_arn    = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    } },
  )
}

module "lambda_api" {
  source = "../lambda_api"
  count  = var.lambda_api_package_file == null ? 0 : 1

  name                       = local.name
  package_file               = var.lambda_api_package_file
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  database_security_group_id = module.database.security_group_id
  endpoint_subnets_cidr      = module.network.endpoint_subnets_cidr
  db_secret_arn              = module.database.app_secret_arn
  api_tokens_secret_arn      = module.secrets.api_tokens_secret_arn
  secrets_kms_key_arn        = module.secrets.kms_key_arn
  log_retention_days         = var.log_retention_days
  logs_kms_key_arn           = module.observability.kms_key_arn
  enable_codedeploy          = var.lambda_api_codedeploy
  alarm_topic_arn            = module.observability.alerts_topic_arn
  permissions_boundary_arn   = module.iam.workload_boundary_arn
}

module "iam" {
  source = "../iam"

  name                      = local.name
  github_repository         = var.github_repository
  github_oidc_provider_arn  = data.aws_iam_openid_connect_provider.github.arn
  github_deploy_environment = var.github_deploy_environment
  github_infra_environment  = var.github_infra_environment
  state_bucket              = var.state_bucket
  state_key                 = var.state_key
  state_kms_key_arn         = var.state_kms_key_arn
  secret_prefix             = local.secret_prefix
  sar_rotation              = var.db_rotation_enabled && var.db_rotation_function_source == "sar"
  oidc_provider_arn         = module.eks.oidc_provider_arn
  oidc_issuer               = module.eks.oidc_issuer
  secrets_kms_key_arn       = module.secrets.kms_key_arn
  loki_bucket_arns          = module.observability.loki_bucket_arns
  loki_kms_key_arn          = module.observability.kms_key_arn
  cluster_arn               = module.eks.cluster_arn
  ecr_repository_arns       = var.ecr_repository_arns
  lambda_function_arn       = try(module.lambda_api[0].function_arn, null)
  codedeploy_arns           = try(module.lambda_api[0].codedeploy_arns, [])

  service_accounts = {
    api = {
      service_account = "${local.namespace}:flowforge-api"
      secret_arns     = [module.database.app_secret_arn, module.secrets.api_tokens_secret_arn]
    }
    worker = {
      service_account = "${local.namespace}:flowforge-worker"
      secret_arns     = [module.database.app_secret_arn]
    }
    scaler = {
      service_account = "${local.namespace}:flowforge-scaler"
      secret_arns     = [module.database.app_secret_arn]
    }
    migrate = {
      service_account = "${local.namespace}:flowforge-migrate"
      secret_arns     = [module.database.owner_secret_arn]
    }
  }
}
