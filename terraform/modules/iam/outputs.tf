output "github_role_arns" {
  description = "Roles of the GitHub workflows: plan (pull requests), apply (terraform apply), deploy (rollouts): the GitHub Environment variables of docs/deploy.md."
  value       = { for k, r in aws_iam_role.github : k => r.arn }
}

output "irsa_role_arns" {
  description = "IRSA role ARNs by component (the eks.amazonaws.com/role-arn annotations of k8s/overlays/<env>/serviceaccounts.yaml; LBC_ROLE_ARN and LOKI_ROLE_ARN of k8s/addons/install.sh)."
  value       = { for k, r in aws_iam_role.irsa : k => r.arn }
}

output "workload_boundary_arn" {
  description = "Permissions boundary every role of the environment carries (except the apply role): no IAM writes. The apply role may create or change a role only with it."
  value       = aws_iam_policy.workload_boundary.arn
}

output "apply_policy_arn" {
  description = "Policy, and permissions boundary, of the GitHub apply role."
  value       = aws_iam_policy.apply.arn
}
