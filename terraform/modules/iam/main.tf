# IAM for one environment:
#
#  - GitHub Actions, through the account's OIDC provider and only for this repository:
#      NAME-github-plan    pull requests: read-only (ReadOnlyAccess), the state object, its lock
#      NAME-github-apply   jobs in the GitHub Environment var.github_infra_environment: terraform
#                          apply, with the policy NAME-terraform-apply (below), which is also its
#                          permissions boundary
#      NAME-github-deploy  jobs in the GitHub Environment var.github_deploy_environment: kubeconfig,
#                          image digests, the Lambda API's code and CodeDeploy deployments
#  - IRSA, one role per Kubernetes service account: FlowForge's components read only their own
#    secrets (GetSecretValue and DescribeSecret, no wildcard) and decrypt only through Secrets
#    Manager, with the secrets key, for those secrets; the AWS Load Balancer Controller and Loki
#    get what those need.
#  - Two permissions boundaries (docs/terraform.md, "The apply role"):
#      NAME-workload-boundary   on every role this environment creates except the apply role:
#                               whatever its own policies say, such a role cannot change IAM
#      NAME-terraform-apply     the apply role's policy and boundary: the services the platform
#                               uses; IAM writes only on NAME-* roles and policies, and a role
#                               only with the workload boundary on it, so the apply role cannot
#                               mint a role more powerful than itself; never on itself, its
#                               boundary, or another environment's state

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id
  github_sub = "token.actions.githubusercontent.com:sub"
  github_aud = "token.actions.githubusercontent.com:aud"

  github_roles = {
    plan   = "repo:${var.github_repository}:pull_request"
    apply  = "repo:${var.github_repository}:environment:${var.github_infra_environment}"
    deploy = "repo:${var.github_repository}:environment:${var.github_deploy_environment}"
  }

  platform_service_accounts = {
    "aws-load-balancer-controller" = "kube-system:aws-load-balancer-controller"
    "loki"                         = "monitoring:loki"
  }
}

# GitHub Actions.
data "aws_iam_policy_document" "github_assume" {
  for_each = local.github_roles

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.github_oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = local.github_aud
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = local.github_sub
      values   = [each.value]
    }
  }
}

resource "aws_iam_role" "github" {
  for_each = local.github_roles

  name                 = "${var.name}-github-${each.key}"
  description          = "GitHub Actions (${each.value}): ${each.key}"
  assume_role_policy   = data.aws_iam_policy_document.github_assume[each.key].json
  max_session_duration = 3600
  # The apply role is capped by its own policy (boundaries.tf); every other role by the workload
  # boundary, which the apply role must put on any role it creates.
  permissions_boundary = each.key == "apply" ? aws_iam_policy.apply.arn : aws_iam_policy.workload_boundary.arn
}

resource "aws_iam_role_policy_attachment" "plan_read_only" {
  role       = aws_iam_role.github["plan"].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/ReadOnlyAccess"
}

data "aws_iam_policy_document" "plan_state" {
  statement {
    sid       = "ListState"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${local.partition}:s3:::${var.state_bucket}"]
  }

  statement {
    sid       = "ReadState"
    actions   = ["s3:GetObject"]
    resources = ["arn:${local.partition}:s3:::${var.state_bucket}/${var.state_key}"]
  }

  # S3 native locking: plan takes the lock file (STATEKEY.tflock) while it reads.
  statement {
    sid       = "LockState"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["arn:${local.partition}:s3:::${var.state_bucket}/${var.state_key}.tflock"]
  }

  dynamic "statement" {
    for_each = var.state_kms_key_arn == null ? [] : [var.state_kms_key_arn]
    content {
      sid       = "StateKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "plan_state" {
  name   = "terraform-state"
  role   = aws_iam_role.github["plan"].id
  policy = data.aws_iam_policy_document.plan_state.json
}

# terraform apply: NAME-terraform-apply (boundaries.tf), which is also the role's permissions
# boundary. Only jobs in the GitHub Environment var.github_infra_environment (required reviewers,
# main only) get this role.
resource "aws_iam_role_policy_attachment" "apply" {
  role       = aws_iam_role.github["apply"].name
  policy_arn = aws_iam_policy.apply.arn
}

data "aws_iam_policy_document" "deploy" {
  statement {
    sid       = "Kubeconfig"
    actions   = ["eks:DescribeCluster"]
    resources = [var.cluster_arn]
  }

  # Digests of the commit's images, and their cosign signatures (stored in the repositories).
  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "ImageDigestsAndSignatures"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = var.ecr_repository_arns
  }

  dynamic "statement" {
    for_each = var.lambda_function_arn == null ? [] : [var.lambda_function_arn]
    content {
      sid = "LambdaApiCode"
      actions = [
        "lambda:GetAlias",
        "lambda:GetFunction",
        "lambda:GetFunctionConfiguration",
        "lambda:PublishVersion",
        "lambda:UpdateFunctionCode",
      ]
      resources = [statement.value, "${statement.value}:*"]
    }
  }

  dynamic "statement" {
    for_each = length(var.codedeploy_arns) == 0 ? [] : [1]
    content {
      sid = "LambdaApiTrafficShift"
      actions = [
        "codedeploy:CreateDeployment",
        "codedeploy:GetApplication",
        "codedeploy:GetApplicationRevision",
        "codedeploy:GetDeployment",
        "codedeploy:GetDeploymentConfig",
        "codedeploy:GetDeploymentGroup",
        "codedeploy:RegisterApplicationRevision",
      ]
      resources = var.codedeploy_arns
    }
  }
}

resource "aws_iam_role_policy" "deploy" {
  name   = "deploy"
  role   = aws_iam_role.github["deploy"].id
  policy = data.aws_iam_policy_document.deploy.json
}

# IRSA.
data "aws_iam_policy_document" "irsa_assume" {
  for_each = merge(
    { for k, v in var.service_accounts : k => v.service_account },
    local.platform_service_accounts,
  )

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${each.value}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "irsa" {
  for_each = data.aws_iam_policy_document.irsa_assume

  name                 = "${var.name}-${each.key}"
  description          = "IRSA: ${each.key}"
  assume_role_policy   = each.value.json
  max_session_duration = 3600
  permissions_boundary = aws_iam_policy.workload_boundary.arn
}

data "aws_iam_policy_document" "component" {
  for_each = var.service_accounts

  statement {
    sid       = "OwnSecrets"
    actions   = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    resources = each.value.secret_arns
  }

  # Secrets Manager decrypts with the secret's ARN as encryption context: the key opens these
  # secrets only, not the other FlowForge secrets encrypted with it.
  statement {
    sid       = "SecretsKeyThroughSecretsManager"
    actions   = ["kms:Decrypt"]
    resources = [var.secrets_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:SecretARN"
      values   = each.value.secret_arns
    }
  }
}

resource "aws_iam_role_policy" "component" {
  for_each = var.service_accounts

  name   = "read-own-secrets"
  role   = aws_iam_role.irsa[each.key].id
  policy = data.aws_iam_policy_document.component[each.key].json
}

data "aws_iam_policy_document" "loki" {
  statement {
    sid       = "Buckets"
    actions   = ["s3:ListBucket"]
    resources = var.loki_bucket_arns
  }

  statement {
    sid       = "Objects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [for b in var.loki_bucket_arns : "${b}/*"]
  }

  statement {
    sid       = "BucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.loki_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "loki" {
  name   = "loki-storage"
  role   = aws_iam_role.irsa["loki"].id
  policy = data.aws_iam_policy_document.loki.json
}

resource "aws_iam_policy" "load_balancer_controller" {
  name        = "${var.name}-aws-load-balancer-controller"
  description = "AWS Load Balancer Controller (AWS's published policy for v2.x)"
  policy      = data.aws_iam_policy_document.load_balancer_controller.json
}

resource "aws_iam_role_policy_attachment" "load_balancer_controller" {
  role       = aws_iam_role.irsa["aws-load-balancer-controller"].name
  policy_arn = aws_iam_policy.load_balancer_controller.arn
}
