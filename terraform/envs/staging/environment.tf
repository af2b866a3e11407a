# FlowForge staging: the names this root gives the shared configuration (../_common).
locals {
  environment               = "staging"
  github_deploy_environment = "staging"       # GitHub Environment of deploys (deploy.yml)
  github_infra_environment  = "infra-staging" # GitHub Environment of terraform apply
}
