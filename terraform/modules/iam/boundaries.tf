# The apply role's policy, and the permissions boundaries (docs/terraform.md, "The apply role").
#
# Why not an action-by-action policy: terraform apply of an environment creates and changes about
# 25 IAM roles and their policies, KMS keys and key policies, the VPC, EKS, RDS, Lambda, API
# Gateway, CodeDeploy, SNS, S3, CloudWatch and Budgets resources, and every provider upgrade adds
# read calls. A list of single actions would break often and, since it must include
# iam:CreateRole/PutRolePolicy/AttachRolePolicy, would still let the role give itself anything.
# What actually bounds it is:
#   - the services it may use at all (everything else, e.g. Organizations, CloudTrail, IAM users,
#     Route 53, other applications' data stores, is out of reach);
#   - IAM writes only on this environment's NAME-* roles and policies, and a role may be created or
#     given permissions only while it carries the workload boundary, which forbids IAM writes: a
#     role the apply role makes can never be more powerful than the apply role;
#   - explicit denies on changing itself, on the two boundaries, on the state bucket's settings and
#     on any other environment's state.
# The same document is the role's permissions policy and its permissions boundary, so attaching
# more to the role (AdministratorAccess, say) would not widen it.

locals {
  apply_policy_name = "${var.name}-terraform-apply"
  iam_arn           = "arn:${local.partition}:iam::${local.account_id}"
  apply_role_arn    = "${local.iam_arn}:role/${var.name}-github-apply"
  apply_policy_arn  = "${local.iam_arn}:policy/${local.apply_policy_name}"
  state_bucket_arn  = "arn:${local.partition}:s3:::${var.state_bucket}"
  secrets_arn       = "arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret"

  # AWS services that create their service-linked role on first use, with the caller's rights.
  service_linked_roles = [
    "autoscaling.amazonaws.com", "eks.amazonaws.com", "eks-nodegroup.amazonaws.com",
    "elasticloadbalancing.amazonaws.com", "rds.amazonaws.com", "spot.amazonaws.com",
  ]

  # IAM calls that give or change a role's permissions or trust.
  role_writes = [
    "iam:AttachRolePolicy", "iam:DeleteRole", "iam:DeleteRolePermissionsBoundary",
    "iam:DeleteRolePolicy", "iam:DetachRolePolicy", "iam:PassRole", "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy", "iam:TagRole", "iam:UntagRole", "iam:UpdateAssumeRolePolicy",
    "iam:UpdateRole", "iam:UpdateRoleDescription",
  ]
  policy_writes = [
    "iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion",
    "iam:SetDefaultPolicyVersion", "iam:TagPolicy", "iam:UntagPolicy",
  ]
}

# Every role of the environment except the apply role: whatever its own policies grant, it cannot
# write IAM (only create the service-linked roles AWS defines, as the load balancer controller and
# EKS do), so no role can be used to escalate.
data "aws_iam_policy_document" "workload_boundary" {
  #checkov:skip=CKV_AWS_107:A permissions boundary grants nothing; it caps what the roles' own policies grant. Credential-exposing calls stay governed by those policies.
  #checkov:skip=CKV_AWS_108:Same: a boundary is a ceiling, not a grant; each role's own policy names its data.
  #checkov:skip=CKV_AWS_109:Same: the boundary excludes IAM writes; it grants no permission management.
  #checkov:skip=CKV_AWS_110:Same: the boundary is what prevents privilege escalation (no IAM writes).
  #checkov:skip=CKV_AWS_111:Same: a boundary is a ceiling; each role's own policy scopes its writes.
  #checkov:skip=CKV_AWS_356:Same: a boundary must cover every resource its roles' policies may name.
  statement {
    sid         = "AnythingTheRolesOwnPoliciesGrantExceptIam"
    not_actions = ["iam:*", "organizations:*", "account:*"]
    resources   = ["*"]
  }

  # Reads: the plan role refreshes the environment's IAM resources, the load balancer controller
  # lists server certificates.
  statement {
    sid       = "IamReadsAndServiceLinkedRoles"
    actions   = ["iam:CreateServiceLinkedRole", "iam:Get*", "iam:List*"]
    resources = ["*"]
  }
}

resource "aws_iam_policy" "workload_boundary" {
  name        = "${var.name}-workload-boundary"
  description = "Permissions boundary of every ${var.name} role except the apply role: no IAM writes"
  policy      = data.aws_iam_policy_document.workload_boundary.json
}

data "aws_iam_policy_document" "apply" {
  #checkov:skip=CKV_AWS_107:The services terraform apply manages include calls checkov counts as credential exposure; Secrets Manager, the store of credentials, is limited to this environment's secrets.
  #checkov:skip=CKV_AWS_109:Permission management is limited to NAME-* roles carrying the workload boundary and NAME-* policies, never this role or the boundaries (explicit denies).
  #checkov:skip=CKV_AWS_110:Escalation is what the boundary prevents: roles may be created or changed only with the workload boundary, which allows no IAM write.
  #checkov:skip=CKV_AWS_111:Creating VPCs, clusters, keys and DB instances cannot name ARNs that do not exist yet; IAM, S3, Secrets Manager, CloudFormation and SAR are scoped by name.
  #checkov:skip=CKV_AWS_356:Same: the infrastructure services' create calls take no resource ARN; those that can be scoped by name are.
  # Services whose resources the environment manages. Their create calls (VPCs, subnets,
  # clusters, keys, instances, ...) cannot name an ARN before it exists.
  statement {
    sid = "PlatformServices"
    actions = [
      "apigateway:*", "budgets:*", "cloudwatch:*", "codedeploy:*", "ec2:*", "eks:*", "kms:*",
      "lambda:*", "logs:*", "pi:*", "rds:*", "sns:*",
    ]
    resources = ["*"]
  }

  statement {
    sid     = "EnvironmentBucketsAndState"
    actions = ["s3:*"]
    resources = [
      "arn:${local.partition}:s3:::${var.name}-*",
      "arn:${local.partition}:s3:::${var.name}-*/*",
      local.state_bucket_arn,
      "${local.state_bucket_arn}/${var.state_key}",
      "${local.state_bucket_arn}/${var.state_key}.tflock",
    ]
  }

  # The environment's secrets; RDS creates the master secret (rds!db-...) with the caller's rights.
  statement {
    sid       = "EnvironmentSecrets"
    actions   = ["secretsmanager:*"]
    resources = ["${local.secrets_arn}:${var.secret_prefix}/*", "${local.secrets_arn}:rds!*"]
  }

  statement {
    sid       = "SecretsWithoutResource"
    actions   = ["secretsmanager:GetRandomPassword", "secretsmanager:ListSecrets"]
    resources = ["*"]
  }

  statement {
    sid       = "IamReads"
    actions   = ["iam:Get*", "iam:List*"]
    resources = ["*"]
  }

  statement {
    sid       = "RolesOnlyWithTheWorkloadBoundary"
    actions   = ["iam:AttachRolePolicy", "iam:CreateRole", "iam:DeleteRolePolicy", "iam:DetachRolePolicy", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy"]
    resources = ["${local.iam_arn}:role/${var.name}-*"]
    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [aws_iam_policy.workload_boundary.arn]
    }
  }

  statement {
    sid       = "RolesOfTheEnvironment"
    actions   = ["iam:DeleteRole", "iam:PassRole", "iam:TagRole", "iam:UntagRole", "iam:UpdateAssumeRolePolicy", "iam:UpdateRole", "iam:UpdateRoleDescription"]
    resources = ["${local.iam_arn}:role/${var.name}-*"]
  }

  statement {
    sid       = "PoliciesOfTheEnvironment"
    actions   = concat(["iam:CreatePolicy"], local.policy_writes)
    resources = ["${local.iam_arn}:policy/${var.name}-*"]
  }

  statement {
    sid = "ClusterOidcProvider"
    actions = [
      "iam:AddClientIDToOpenIDConnectProvider", "iam:CreateOpenIDConnectProvider",
      "iam:DeleteOpenIDConnectProvider", "iam:RemoveClientIDFromOpenIDConnectProvider",
      "iam:TagOpenIDConnectProvider", "iam:UntagOpenIDConnectProvider",
      "iam:UpdateOpenIDConnectProviderThumbprint",
    ]
    resources = ["${local.iam_arn}:oidc-provider/oidc.eks.${local.region}.amazonaws.com/id/*"]
  }

  statement {
    sid       = "ServiceLinkedRoles"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = local.service_linked_roles
    }
  }

  # The rotation function from the Serverless Application Repository: SAR makes a CloudFormation
  # stack (serverlessrepo-NAME-db-rotation) whose template, AWS's, creates the function's role.
  # CloudFormation names that role itself and cannot give it the boundary, so roles named
  # serverlessrepo-* may be written without it, but only by CloudFormation (aws:CalledVia), in a
  # stack of this environment. Without SAR (rotation from a zip) none of this is granted.
  dynamic "statement" {
    for_each = var.sar_rotation ? [1] : []
    content {
      sid       = "RotationApplication"
      actions   = ["serverlessrepo:CreateCloudFormationChangeSet", "serverlessrepo:CreateCloudFormationTemplate", "serverlessrepo:GetApplication", "serverlessrepo:GetCloudFormationTemplate"]
      resources = ["arn:${local.partition}:serverlessrepo:*:*:applications/SecretsManagerRDSPostgreSQLRotationMultiUser"]
    }
  }

  # CloudFormation reads the change set's template, which SAR keeps in its own buckets, with the
  # caller's rights.
  dynamic "statement" {
    for_each = var.sar_rotation ? [1] : []
    content {
      sid       = "RotationTemplate"
      actions   = ["s3:GetObject"]
      resources = ["arn:${local.partition}:s3:::awsserverlessrepo-changesets-*/*"]
    }
  }

  dynamic "statement" {
    for_each = var.sar_rotation ? [1] : []
    content {
      sid     = "RotationStack"
      actions = ["cloudformation:*"]
      resources = [
        "arn:${local.partition}:cloudformation:${local.region}:${local.account_id}:stack/serverlessrepo-${var.name}-*/*",
        "arn:${local.partition}:cloudformation:${local.region}:${local.account_id}:changeSet/*/*",
      ]
    }
  }

  dynamic "statement" {
    for_each = var.sar_rotation ? [1] : []
    content {
      sid       = "RotationStackRole"
      actions   = concat(["iam:CreateRole"], local.role_writes)
      resources = ["${local.iam_arn}:role/serverlessrepo-*"]
      condition {
        test     = "ForAnyValue:StringEquals"
        variable = "aws:CalledVia"
        values   = ["cloudformation.amazonaws.com"]
      }
    }
  }

  statement {
    sid       = "NeverThisRole"
    effect    = "Deny"
    actions   = local.role_writes
    resources = [local.apply_role_arn]
  }

  statement {
    sid       = "NeverTheBoundaries"
    effect    = "Deny"
    actions   = local.policy_writes
    resources = [local.apply_policy_arn, "${local.iam_arn}:policy/${var.name}-workload-boundary"]
  }

  statement {
    sid       = "NoRoleLosesItsBoundary"
    effect    = "Deny"
    actions   = ["iam:DeleteRolePermissionsBoundary"]
    resources = ["*"]
  }

  statement {
    sid    = "StateBucketSettingsStay"
    effect = "Deny"
    actions = [
      "s3:DeleteBucket", "s3:DeleteBucketPolicy", "s3:PutBucketPolicy", "s3:PutBucketVersioning",
      "s3:PutEncryptionConfiguration", "s3:PutLifecycleConfiguration", "s3:PutBucketPublicAccessBlock",
    ]
    resources = [local.state_bucket_arn]
  }

  # Objects are written only in this environment's buckets and its own state and lock.
  statement {
    sid     = "NoOtherStateObject"
    effect  = "Deny"
    actions = ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObject"]
    not_resources = [
      "arn:${local.partition}:s3:::${var.name}-*/*",
      "${local.state_bucket_arn}/${var.state_key}",
      "${local.state_bucket_arn}/${var.state_key}.tflock",
    ]
  }

  dynamic "statement" {
    for_each = var.state_kms_key_arn == null ? [] : [var.state_kms_key_arn]
    content {
      sid       = "StateKeyStays"
      effect    = "Deny"
      actions   = ["kms:DisableKey", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_policy" "apply" {
  name        = local.apply_policy_name
  description = "terraform apply of ${var.name} (GitHub): policy and permissions boundary of ${var.name}-github-apply"
  policy      = data.aws_iam_policy_document.apply.json
}
