output "repository_urls" {
  description = "Image repositories by name (the k8s overlays' images: newName)."
  value       = module.ecr.repository_urls
}

output "registry_id" {
  description = "Registry account id (ecr_registry_id of the environment roots; GitHub variable ECR_REGISTRY)."
  value       = module.ecr.registry_id
}

output "build_role_arn" {
  description = "Role of the build workflow (GitHub repository variable AWS_BUILD_ROLE_ARN)."
  value       = module.ecr.push_role_arn
}
