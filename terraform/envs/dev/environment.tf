# FlowForge dev: the names this root gives the shared configuration (../_common).
locals {
  environment               = "dev"
  github_deploy_environment = "dev"       # GitHub Environment of deploys (deploy.yml)
  github_infra_environment  = "infra-dev" # GitHub Environment of terraform apply
}
