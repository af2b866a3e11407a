# One FlowForge environment: everything is in modules/platform. Shared by envs/dev, staging and
# prod (symlinked); each root sets its names in environment.tf, its backend key in versions.tf
# and its sizes in terraform.tfvars. First apply, bootstrap and GitHub setup: docs/deploy.md.

data "aws_caller_identity" "current" {}

locals {
  ecr_registry_id = coalesce(var.ecr_registry_id, data.aws_caller_identity.current.account_id)
}

module "platform" {
  source = "../../modules/platform"

  environment               = local.environment
  github_deploy_environment = local.github_deploy_environment
  github_infra_environment  = local.github_infra_environment
  github_repository         = var.github_repository
  state_key                 = "flowforge/${local.environment}/terraform.tfstate"

  azs                = var.azs
  vpc_cidr           = var.vpc_cidr
  single_nat_gateway = var.single_nat_gateway
  log_retention_days = var.log_retention_days
  alert_emails       = var.alert_emails
  monthly_budget_usd = var.monthly_budget_usd
  enable_budget      = var.enable_budget

  state_bucket      = var.state_bucket
  state_kms_key_arn = var.state_kms_key_arn
  ecr_repository_arns = [
    for name in ["flowforge-api", "flowforge-worker", "flowforge-scaler"] :
    "arn:aws:ecr:${var.region}:${local.ecr_registry_id}:repository/${name}"
  ]

  eks_public_access_cidrs   = var.eks_public_access_cidrs
  eks_node_groups           = var.eks_node_groups
  eks_admin_principal_arns  = var.eks_admin_principal_arns
  enable_eks_node_groups    = var.enable_eks_node_groups
  enable_eks_addons         = var.enable_eks_addons
  enable_eks_access_entries = var.enable_eks_access_entries

  db_instance_class                 = var.db_instance_class
  db_ca_cert_identifier             = var.db_ca_cert_identifier
  db_multi_az                       = var.db_multi_az
  db_deletion_protection            = var.db_deletion_protection
  db_backup_retention_days          = var.db_backup_retention_days
  db_max_allocated_storage          = var.db_max_allocated_storage
  db_performance_insights           = var.enable_db_performance_insights
  db_rotation_enabled               = var.enable_db_rotation
  db_rotation_function_source       = var.db_rotation_function_source
  db_rotation_function_package_file = var.db_rotation_function_package_file

  lambda_api_package_file = var.lambda_api_package_file
  lambda_api_codedeploy   = var.enable_lambda_api_codedeploy

  secret_recovery_window_days = var.secret_recovery_window_days
  force_destroy               = var.force_destroy
}
