output "instance_identifier" {
  description = "DB instance identifier."
  value       = aws_db_instance.this.identifier
}

output "address" {
  description = "Host name of the database (TLS verify-full: the RDS global bundle signs it)."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the database."
  value       = aws_db_instance.this.port
}

output "security_group_id" {
  description = "Security group of the database."
  value       = aws_security_group.this.id
}

output "master_user_secret_arn" {
  description = "ARN of the master user secret RDS manages (bootstrap of the roles only)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
  sensitive   = true
}

output "app_secret_arn" {
  description = "ARN of the application role's secret (api, worker, scaler)."
  value       = aws_secretsmanager_secret.user["app"].arn
}

output "app_secret_name" {
  description = "Name of the application role's secret (FLOWFORGE_DB_SECRET=aws-sm:NAME)."
  value       = aws_secretsmanager_secret.user["app"].name
}

output "owner_secret_arn" {
  description = "ARN of the schema owner's secret (the migration Job)."
  value       = aws_secretsmanager_secret.user["owner"].arn
}

output "owner_secret_name" {
  description = "Name of the schema owner's secret."
  value       = aws_secretsmanager_secret.user["owner"].name
}

output "rotation_function_arn" {
  description = "ARN of the rotation function (null when rotation is off)."
  value       = local.rotation_function_arn
}
