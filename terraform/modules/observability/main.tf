# Alerts, cost, and what the logs need: one customer-managed KMS key for log groups, the alerts
# topic and the Loki buckets; the SNS topic every alarm publishes to; the monthly budget; the S3
# buckets Loki keeps its chunks and ruler state in (k8s/addons).

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id   = data.aws_caller_identity.current.account_id
  region       = data.aws_region.current.name
  partition    = data.aws_partition.current.partition
  loki_prefix  = "${var.name}-loki-${local.account_id}"
  loki_buckets = toset(["chunks", "ruler"])
}

data "aws_iam_policy_document" "key_services" {
  #checkov:skip=CKV_AWS_109:Key policy statements for AWS services: "*" is this key only, and each statement is limited by service principal and source account or service.
  #checkov:skip=CKV_AWS_111:Same: "*" in a key policy is the key itself.
  #checkov:skip=CKV_AWS_356:Same: "*" in a key policy is the key itself.
  statement {
    sid       = "CloudWatchLogsEncrypt"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:*"]
    }
  }

  statement {
    sid       = "AlarmsAndBudgetsPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

module "kms" {
  source = "../kms_key"

  alias            = "${var.name}-observability"
  description      = "${var.name}: log groups, alerts topic, Loki buckets"
  policy_documents = [data.aws_iam_policy_document.key_services.json]
}

resource "aws_sns_topic" "alerts" {
  name              = "${var.name}-alerts"
  kms_master_key_id = module.kms.arn
}

data "aws_iam_policy_document" "alerts" {
  statement {
    sid       = "AlarmsAndBudgetsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts.json
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alert_emails)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_budgets_budget" "this" {
  count = var.enable_budget ? 1 : 0

  name         = "${var.name}-monthly"
  budget_type  = "COST"
  limit_amount = tostring(var.monthly_budget_usd)
  limit_unit   = "USD"
  time_unit    = "MONTHLY"

  dynamic "cost_filter" {
    for_each = var.budget_cost_filter_tag == null ? [] : [var.budget_cost_filter_tag]
    content {
      name   = "TagKeyValue"
      values = ["user:${cost_filter.value}"]
    }
  }

  notification {
    comparison_operator        = "GREATER_THAN"
    threshold                  = 80
    threshold_type             = "PERCENTAGE"
    notification_type          = "ACTUAL"
    subscriber_sns_topic_arns  = [aws_sns_topic.alerts.arn]
    subscriber_email_addresses = var.alert_emails
  }

  notification {
    comparison_operator        = "GREATER_THAN"
    threshold                  = 100
    threshold_type             = "PERCENTAGE"
    notification_type          = "FORECASTED"
    subscriber_sns_topic_arns  = [aws_sns_topic.alerts.arn]
    subscriber_email_addresses = var.alert_emails
  }
}

# Loki: chunks and ruler buckets (k8s/addons/install.sh LOKI_BUCKET_PREFIX = loki_bucket_prefix).
resource "aws_s3_bucket" "loki" {
  for_each = local.loki_buckets

  #checkov:skip=CKV_AWS_18:Server access logs of Loki's own log storage would only log Loki's reads and writes; CloudTrail data events are the account-level audit path.
  #checkov:skip=CKV_AWS_144:Cross-region replication of log chunks is not worth its cost; logs are an operational aid, not a record.
  #checkov:skip=CKV2_AWS_62:Nothing consumes events of these buckets.
  bucket        = "${local.loki_prefix}-${each.key}"
  force_destroy = var.force_destroy_buckets
}

resource "aws_s3_bucket_public_access_block" "loki" {
  for_each = local.loki_buckets

  bucket                  = aws_s3_bucket.loki[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "loki" {
  for_each = local.loki_buckets

  bucket = aws_s3_bucket.loki[each.key].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "loki" {
  for_each = local.loki_buckets

  bucket = aws_s3_bucket.loki[each.key].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "loki" {
  for_each = local.loki_buckets

  bucket = aws_s3_bucket.loki[each.key].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = module.kms.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "loki" {
  for_each = local.loki_buckets

  bucket = aws_s3_bucket.loki[each.key].id
  rule {
    id     = "expire"
    status = "Enabled"
    filter {}
    expiration {
      days = var.loki_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.loki]
}

data "aws_iam_policy_document" "loki_bucket" {
  for_each = local.loki_buckets

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.loki[each.key].arn, "${aws_s3_bucket.loki[each.key].arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "loki" {
  for_each = local.loki_buckets

  bucket = aws_s3_bucket.loki[each.key].id
  policy = data.aws_iam_policy_document.loki_bucket[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.loki]
}
