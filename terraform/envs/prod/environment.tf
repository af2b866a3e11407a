# FlowForge prod: the names this root gives the shared configuration (../_common).
locals {
  environment               = "prod"
  github_deploy_environment = "production"       # GitHub Environment of deploys (deploy.yml)
  github_infra_environment  = "infra-production" # GitHub Environment of terraform apply
}
