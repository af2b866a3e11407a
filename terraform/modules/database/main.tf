# RDS PostgreSQL 16 for the queue: encrypted with its own KMS key, TLS enforced
# (rds.force_ssl), backups with point-in-time recovery, Enhanced Monitoring, Performance
# Insights, logs in CloudWatch Logs. The master password is generated and kept by RDS in Secrets
# Manager (never in Terraform). Two more secrets in the RDS rotation JSON, which the services
# read themselves (FLOWFORGE_DB_SECRET=aws-sm:NAME):
#
#   PREFIX/db         flowforge_app    api, worker, scaler (read and write)
#   PREFIX/db-owner   flowforge_owner  the migration Job (owns the schema)
#
# Both rotate on a schedule with AWS's alternating-users function
# (SecretsManagerRDSPostgreSQLRotationMultiUser), which logs in with the master secret to
# maintain USER and USER_clone. Their first passwords come from GetRandomPassword and are written
# write-only, so no password is ever in the plan or the state. The roles themselves are created
# once with these passwords (docs/deploy.md, "Database roles"); rotation starts on the schedule,
# not at apply time, so that it never runs before the roles exist.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  db_name    = "flowforge"

  # Secret name suffix and database role of each set of credentials.
  users = {
    app   = { secret = "db", username = "flowforge_app" }
    owner = { secret = "db-owner", username = "flowforge_owner" }
  }

  # Characters rotated passwords never contain (the function's default set): they would need
  # quoting in a connection URL or in psql.
  exclude_characters = ":/@\"'\\"

  rotation_function_name = "${var.name}-db-rotation"
  rotation_function_arn = var.rotation_enabled ? (
    var.rotation_function_source == "sar"
    ? aws_serverlessapplicationrepository_cloudformation_stack.rotation[0].outputs["RotationLambdaARN"]
    : aws_lambda_function.rotation[0].arn
  ) : null
}

module "kms" {
  source = "../kms_key"

  alias       = "${var.name}-database"
  description = "${var.name}: RDS storage, snapshots, Performance Insights"
}

resource "aws_db_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
}

resource "aws_security_group" "this" {
  name        = "${var.name}-database"
  description = "PostgreSQL from the private subnets"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.name}-database" }
}

resource "aws_vpc_security_group_ingress_rule" "postgres" {
  for_each = toset(var.client_cidrs)

  security_group_id = aws_security_group.this.id
  description       = "PostgreSQL from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  cidr_ipv4         = each.value
}

# A new family (major version upgrade) replaces the group before the old one goes: a prefix, not a
# fixed name, or the new group's name would collide with the old one.
resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.name}-"
  family      = "postgres${split(".", var.engine_version)[0]}"
  description = "FlowForge: TLS only, statement and connection logging"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }

  parameter {
    name  = "log_lock_waits"
    value = "1"
  }

  parameter {
    name         = "shared_preload_libraries"
    value        = "pg_stat_statements"
    apply_method = "pending-reboot"
  }

  lifecycle {
    create_before_destroy = true
  }
}

# RDS creates these on first write without a retention: create them first.
resource "aws_cloudwatch_log_group" "this" {
  for_each = toset(["postgresql", "upgrade"])

  name              = "/aws/rds/instance/${var.name}/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
}

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  count = var.monitoring_interval > 0 ? 1 : 0

  name                 = "${var.name}-rds-monitoring"
  assume_role_policy   = data.aws_iam_policy_document.monitoring_assume.json
  permissions_boundary = var.permissions_boundary_arn
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  count = var.monitoring_interval > 0 ? 1 : 0

  role       = aws_iam_role.monitoring[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_157:Multi-AZ is a per-environment choice (var.multi_az): on in prod, off in dev to halve its cost.
  #checkov:skip=CKV_AWS_293:Deletion protection is a per-environment choice (var.deletion_protection): on in staging and prod, off in dev so that it can be torn down.
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class

  allocated_storage     = var.allocated_storage
  max_allocated_storage = var.max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = module.kms.arn

  db_name                       = local.db_name
  username                      = "flowforge_admin"
  manage_master_user_password   = true
  master_user_secret_kms_key_id = var.secrets_kms_key_arn

  iam_database_authentication_enabled = true
  ca_cert_identifier                  = var.ca_cert_identifier

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.this.id]
  parameter_group_name   = aws_db_parameter_group.this.name
  publicly_accessible    = false
  multi_az               = var.multi_az

  backup_retention_period   = var.backup_retention_days
  backup_window             = "02:00-03:00"
  maintenance_window        = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = !var.deletion_protection
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = !var.deletion_protection
  final_snapshot_identifier = var.deletion_protection ? "${var.name}-final" : null

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = false
  apply_immediately           = var.apply_immediately

  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]
  monitoring_interval             = var.monitoring_interval
  monitoring_role_arn             = var.monitoring_interval > 0 ? aws_iam_role.monitoring[0].arn : null

  performance_insights_enabled          = var.performance_insights_enabled
  performance_insights_kms_key_id       = var.performance_insights_enabled ? module.kms.arn : null
  performance_insights_retention_period = var.performance_insights_enabled ? 7 : null

  depends_on = [aws_cloudwatch_log_group.this]
}

# The services' credentials.
resource "aws_secretsmanager_secret" "user" {
  for_each = local.users

  #checkov:skip=CKV2_AWS_57:Both secrets rotate: aws_secretsmanager_secret_rotation.user below, one per secret (checkov's graph links only the first for_each instance).

  name                    = "${var.secret_prefix}/${each.value.secret}"
  description             = "FlowForge database role ${each.value.username} (RDS rotation JSON, alternating users)"
  kms_key_id              = var.secrets_kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days
}

ephemeral "aws_secretsmanager_random_password" "user" {
  for_each = local.users

  password_length    = 40
  exclude_characters = local.exclude_characters
}

resource "aws_secretsmanager_secret_version" "user" {
  for_each = local.users

  secret_id = aws_secretsmanager_secret.user[each.key].id
  secret_string_wo = jsonencode({
    engine               = "postgres"
    host                 = aws_db_instance.this.address
    port                 = aws_db_instance.this.port
    dbname               = local.db_name
    username             = each.value.username
    password             = ephemeral.aws_secretsmanager_random_password.user[each.key].random_password
    masterarn            = aws_db_instance.this.master_user_secret[0].secret_arn
    dbInstanceIdentifier = aws_db_instance.this.identifier
  })
  # Bump to write a fresh first version (e.g. after the instance's address changed): the
  # rotation function keeps the value current after that.
  secret_string_wo_version = 1
}

# The rotation function: in the private subnets, reaching PostgreSQL and the Secrets Manager
# endpoint, nothing else.
resource "aws_security_group" "rotation" {
  count = var.rotation_enabled ? 1 : 0

  name        = "${var.name}-db-rotation"
  description = "Secrets rotation function: PostgreSQL and the Secrets Manager endpoint"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.name}-db-rotation" }
}

resource "aws_vpc_security_group_egress_rule" "rotation_postgres" {
  count = var.rotation_enabled ? 1 : 0

  security_group_id            = aws_security_group.rotation[0].id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.this.id
}

resource "aws_vpc_security_group_egress_rule" "rotation_endpoints" {
  count = var.rotation_enabled ? 1 : 0

  security_group_id = aws_security_group.rotation[0].id
  description       = "HTTPS to the interface endpoints (Secrets Manager, KMS)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.endpoint_subnets_cidr
}

# AWS's rotation function from the Serverless Application Repository. Its parameters are those
# AWS's own constructs pass to it (aws-cdk-lib, aws-secretsmanager SecretRotation): endpoint,
# functionName, vpcSubnetIds, vpcSecurityGroupIds, excludeCharacters, kmsKeyArn, masterSecretArn,
# masterSecretKmsKeyArn; its output RotationLambdaARN is the function. The stack also grants
# Secrets Manager the right to invoke the function.
resource "aws_serverlessapplicationrepository_cloudformation_stack" "rotation" {
  count = var.rotation_enabled && var.rotation_function_source == "sar" ? 1 : 0

  name             = local.rotation_function_name
  application_id   = "arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSPostgreSQLRotationMultiUser"
  semantic_version = var.rotation_function_sar_version
  capabilities     = ["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"]
  parameters = {
    functionName          = local.rotation_function_name
    endpoint              = "https://secretsmanager.${local.region}.amazonaws.com"
    vpcSubnetIds          = join(",", var.rotation_subnet_ids)
    vpcSecurityGroupIds   = aws_security_group.rotation[0].id
    excludeCharacters     = local.exclude_characters
    kmsKeyArn             = var.secrets_kms_key_arn
    masterSecretArn       = aws_db_instance.this.master_user_secret[0].secret_arn
    masterSecretKmsKeyArn = var.secrets_kms_key_arn
  }
}

# The same function from a zip (rotation_function_source = "package").
data "aws_iam_policy_document" "rotation_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rotation" {
  count = var.rotation_enabled && var.rotation_function_source == "package" ? 1 : 0

  name                 = "${var.name}-db-rotation"
  assume_role_policy   = data.aws_iam_policy_document.rotation_assume.json
  permissions_boundary = var.permissions_boundary_arn
}

resource "aws_iam_role_policy_attachment" "rotation_vpc" {
  count = var.rotation_enabled && var.rotation_function_source == "package" ? 1 : 0

  role       = aws_iam_role.rotation[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

data "aws_iam_policy_document" "rotation" {
  statement {
    sid = "RotateTheUserSecrets"
    actions = [
      "secretsmanager:DescribeSecret",
      "secretsmanager:GetSecretValue",
      "secretsmanager:PutSecretValue",
      "secretsmanager:UpdateSecretVersionStage",
    ]
    resources = [for s in aws_secretsmanager_secret.user : s.arn]
  }

  # The RDS-managed master secret holds only username and password: the function finds the
  # instance through the secret's aws:rds:primaryDBInstanceArn tag (DescribeSecret) and reads
  # its address with DescribeDBInstances (through the rds interface endpoint).
  statement {
    sid       = "ReadTheMasterSecret"
    actions   = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    resources = [aws_db_instance.this.master_user_secret[0].secret_arn]
  }

  statement {
    sid       = "NewPasswords"
    actions   = ["secretsmanager:GetRandomPassword"]
    resources = ["*"]
  }

  statement {
    sid       = "SecretsKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.secrets_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "DescribeTheInstance"
    actions   = ["rds:DescribeDBInstances"]
    resources = [aws_db_instance.this.arn]
  }
}

resource "aws_iam_role_policy" "rotation" {
  count = var.rotation_enabled && var.rotation_function_source == "package" ? 1 : 0

  name   = "rotate-database-secrets"
  role   = aws_iam_role.rotation[0].id
  policy = data.aws_iam_policy_document.rotation.json
}

resource "aws_cloudwatch_log_group" "rotation" {
  count = var.rotation_enabled && var.rotation_function_source == "package" ? 1 : 0

  name              = "/aws/lambda/${local.rotation_function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
}

resource "aws_lambda_function" "rotation" {
  count = var.rotation_enabled && var.rotation_function_source == "package" ? 1 : 0

  #checkov:skip=CKV_AWS_116:Secrets Manager invokes the rotation function synchronously and retries the rotation itself; a dead-letter queue would never receive anything.
  #checkov:skip=CKV_AWS_272:The package is AWS's published rotation function, built from its source by the operator (docs/deploy.md); Lambda code signing would need an AWS Signer profile in the build.
  function_name                  = local.rotation_function_name
  description                    = "SecretsManagerRDSPostgreSQLRotationMultiUser for ${var.name}"
  role                           = aws_iam_role.rotation[0].arn
  runtime                        = "python3.12"
  handler                        = "lambda_function.lambda_handler"
  filename                       = var.rotation_function_package_file
  source_code_hash               = filebase64sha256(var.rotation_function_package_file)
  timeout                        = 60
  memory_size                    = 256
  reserved_concurrent_executions = 2
  kms_key_arn                    = var.secrets_kms_key_arn

  environment {
    variables = {
      SECRETS_MANAGER_ENDPOINT = "https://secretsmanager.${local.region}.amazonaws.com"
      EXCLUDE_CHARACTERS       = local.exclude_characters
    }
  }

  vpc_config {
    subnet_ids         = var.rotation_subnet_ids
    security_group_ids = [aws_security_group.rotation[0].id]
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_cloudwatch_log_group.rotation, aws_iam_role_policy_attachment.rotation_vpc]
}

resource "aws_lambda_permission" "rotation" {
  count = var.rotation_enabled && var.rotation_function_source == "package" ? 1 : 0

  statement_id   = "SecretsManagerRotates"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.rotation[0].function_name
  principal      = "secretsmanager.amazonaws.com"
  source_account = local.account_id
}

resource "aws_secretsmanager_secret_rotation" "user" {
  for_each = var.rotation_enabled ? local.users : {}

  secret_id           = aws_secretsmanager_secret.user[each.key].id
  rotation_lambda_arn = local.rotation_function_arn
  rotate_immediately  = false

  rotation_rules {
    schedule_expression = var.rotation_schedule
  }

  depends_on = [aws_secretsmanager_secret_version.user, aws_lambda_permission.rotation]
}

# Alarms.
resource "aws_cloudwatch_metric_alarm" "cpu" {
  alarm_name          = "${var.name}-db-cpu"
  alarm_description   = "Database CPU above 80% for 15 minutes"
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.this.identifier }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = 80
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "storage" {
  alarm_name          = "${var.name}-db-free-storage"
  alarm_description   = "Database free storage below 10% of the autoscaling ceiling"
  namespace           = "AWS/RDS"
  metric_name         = "FreeStorageSpace"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.this.identifier }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.max_allocated_storage * 1024 * 1024 * 1024 / 10
  comparison_operator = "LessThanThreshold"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "memory" {
  alarm_name          = "${var.name}-db-freeable-memory"
  alarm_description   = "Database freeable memory below 256 MiB for 15 minutes"
  namespace           = "AWS/RDS"
  metric_name         = "FreeableMemory"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.this.identifier }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = 256 * 1024 * 1024
  comparison_operator = "LessThanThreshold"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}
