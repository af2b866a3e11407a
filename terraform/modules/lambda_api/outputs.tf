output "function_name" {
  description = "Name of the API's function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the API's function (unqualified)."
  value       = aws_lambda_function.this.arn
}

output "api_endpoint" {
  description = "URL of the HTTP API."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "codedeploy_application" {
  description = "CodeDeploy application of the traffic shifts (null without CodeDeploy)."
  value       = var.enable_codedeploy ? aws_codedeploy_app.this[0].name : null
}

output "codedeploy_arns" {
  description = "ARNs the deploy role needs for traffic shifts: application, deployment group, deployment config."
  value = var.enable_codedeploy ? [
    aws_codedeploy_app.this[0].arn,
    aws_codedeploy_deployment_group.this[0].arn,
    "arn:${local.partition}:codedeploy:${local.region}:${data.aws_caller_identity.current.account_id}:deploymentconfig:${var.deployment_config_name}",
  ] : []
}
