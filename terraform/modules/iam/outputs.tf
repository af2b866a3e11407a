output "github_role_arns" {
  description = "Roles of the GitHub workflows: plan (pull requests), apply (terraform apply), deploy (rollouts): the GitHub Environment variables of docs/deploy.md."
  value       = { for k, r in aws_iam_role.github : k => r.arn }
}

output "irsa_role_arns" {
  description = "IRSA role ARNs by component (the eks.amazonaws.com/role-arn annotations of k8s/overlays/<env>/serviceaccounts.yaml; LBC_ROLE_ARN and LOKI_ROLE_ARN of k8s/addons/install.sh)."
  value       = { for k, r in aws_iam_role.irsa : k => r.arn }
}
