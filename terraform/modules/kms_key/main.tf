# A customer-managed KMS key with yearly rotation. Its policy lets the account's IAM policies
# grant its use (so each role names exactly the key it needs), plus whatever statements a caller
# adds for AWS services.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "this" {
  #checkov:skip=CKV_AWS_109:In a key policy the resource "*" is this key only; the statement delegates to the account's IAM policies, AWS's default key policy.
  #checkov:skip=CKV_AWS_111:Same: "*" in a key policy is the key itself.
  #checkov:skip=CKV_AWS_356:Same: "*" in a key policy is the key itself.
  source_policy_documents = var.policy_documents

  statement {
    sid       = "AccountIamPoliciesGrantUse"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = var.description
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.this.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.alias}"
  target_key_id = aws_kms_key.this.key_id
}
