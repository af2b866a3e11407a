# The EKS cluster: private and (optionally, IAM-authenticated) public API endpoint, Kubernetes
# Secrets encrypted with a KMS key, every control-plane log type to CloudWatch Logs, an OIDC
# provider for IRSA, access entries instead of the aws-auth ConfigMap, managed node groups on
# launch templates (IMDSv2 only, encrypted disks), and the add-ons FlowForge's manifests need:
# vpc-cni with network policy enforcement, coredns, kube-proxy, metrics-server (the API's HPA)
# and the EBS CSI driver (Prometheus, Alertmanager and Grafana volumes).

data "aws_partition" "current" {}

locals {
  partition = data.aws_partition.current.partition
  issuer    = replace(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://", "")
}

module "kms" {
  source = "../kms_key"

  alias       = "${var.name}-eks"
  description = "${var.name}: Kubernetes Secrets envelope encryption"
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/eks/${var.name}/cluster"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
}

data "aws_iam_policy_document" "cluster_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name                 = "${var.name}-eks-cluster"
  assume_role_policy   = data.aws_iam_policy_document.cluster_assume.json
  permissions_boundary = var.permissions_boundary_arn
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

# Envelope encryption of Kubernetes Secrets: the key policy delegates to IAM, so the cluster role
# needs the key itself (AmazonEKSClusterPolicy names no customer key).
data "aws_iam_policy_document" "cluster_encryption" {
  statement {
    sid       = "SecretsEnvelopeKey"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:ListGrants"]
    resources = [module.kms.arn]
  }
}

resource "aws_iam_role_policy" "cluster_encryption" {
  name   = "secrets-encryption-key"
  role   = aws_iam_role.cluster.id
  policy = data.aws_iam_policy_document.cluster_encryption.json
}

resource "aws_eks_cluster" "this" {
  #checkov:skip=CKV_AWS_39:The public endpoint is a per-environment choice (var.endpoint_public_access): GitHub-hosted runners deploy through it, every request is authenticated by IAM access entries, and public_access_cidrs narrows it.
  #checkov:skip=CKV_AWS_38:public_access_cidrs is set per environment (docs/deploy.md); the default admits the GitHub-hosted runners, whose addresses are not fixed.
  name     = var.name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.cluster.arn

  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = true
  }

  vpc_config {
    subnet_ids              = var.subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = var.endpoint_public_access
    public_access_cidrs     = var.endpoint_public_access ? var.public_access_cidrs : null
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = module.kms.arn
    }
  }

  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  depends_on = [aws_iam_role_policy_attachment.cluster, aws_iam_role_policy.cluster_encryption, aws_cloudwatch_log_group.this]
}

# IRSA: the cluster's service account tokens are trusted by IAM.
resource "aws_iam_openid_connect_provider" "this" {
  url            = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]
}

# Nodes.
data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name                 = "${var.name}-eks-node"
  assume_role_policy   = data.aws_iam_policy_document.node_assume.json
  permissions_boundary = var.permissions_boundary_arn
}

# The CNI's permissions are on its own IRSA role (below), not on the nodes.
resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset(["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly"])

  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value}"
}

resource "aws_launch_template" "node" {
  for_each = var.create_node_groups ? var.node_groups : {}

  name_prefix            = "${var.name}-${each.key}-"
  update_default_version = true

  # IMDSv2 only, one hop: pods cannot reach the node's credentials (they use IRSA).
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = each.value.disk_size_gib
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = { Name = "${var.name}-${each.key}" }
  }
}

resource "aws_eks_node_group" "this" {
  for_each = var.create_node_groups ? var.node_groups : {}

  cluster_name    = aws_eks_cluster.this.name
  node_group_name = each.key
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.subnet_ids
  ami_type        = "AL2023_x86_64_STANDARD"
  capacity_type   = each.value.capacity_type
  instance_types  = each.value.instance_types
  labels          = each.value.labels

  launch_template {
    id      = aws_launch_template.node[each.key].id
    version = aws_launch_template.node[each.key].latest_version
  }

  scaling_config {
    min_size     = each.value.min_size
    max_size     = each.value.max_size
    desired_size = each.value.desired_size
  }

  update_config {
    max_unavailable = 1
  }

  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }

  # Nodes become Ready only with the pod network (the managed vpc-cni and its IRSA role).
  depends_on = [aws_iam_role_policy_attachment.node, aws_eks_addon.before_nodes]
}

# Add-ons with IAM permissions get IRSA roles of their own.
locals {
  addon_roles = {
    "vpc-cni"            = { service_account = "kube-system:aws-node", policy = "AmazonEKS_CNI_Policy" }
    "aws-ebs-csi-driver" = { service_account = "kube-system:ebs-csi-controller-sa", policy = "service-role/AmazonEBSCSIDriverPolicy" }
  }
  # The CNI goes on before the nodes: the nodes carry no CNI permissions (AmazonEKS_CNI_Policy is
  # on the add-on's IRSA role), so the pod network, and with it node readiness, needs the managed
  # vpc-cni and its role first. kube-proxy with it. The others run on nodes.
  addons_before_nodes = {
    "vpc-cni"    = jsonencode({ enableNetworkPolicy = "true" })
    "kube-proxy" = null
  }
  addons_after_nodes = {
    "coredns"            = null
    "metrics-server"     = null
    "aws-ebs-csi-driver" = null
  }
}

data "aws_iam_policy_document" "addon_assume" {
  for_each = local.addon_roles

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.this.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:sub"
      values   = ["system:serviceaccount:${each.value.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "addon" {
  for_each = local.addon_roles

  name                 = "${var.name}-${each.key}"
  assume_role_policy   = data.aws_iam_policy_document.addon_assume[each.key].json
  permissions_boundary = var.permissions_boundary_arn
}

resource "aws_iam_role_policy_attachment" "addon" {
  for_each = local.addon_roles

  role       = aws_iam_role.addon[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value.policy}"
}

resource "aws_eks_addon" "before_nodes" {
  for_each = var.create_addons ? local.addons_before_nodes : {}

  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = each.key
  configuration_values        = each.value
  service_account_role_arn    = try(aws_iam_role.addon[each.key].arn, null)
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"

  depends_on = [aws_iam_role_policy_attachment.addon]
}

resource "aws_eks_addon" "after_nodes" {
  for_each = var.create_addons ? local.addons_after_nodes : {}

  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = each.key
  configuration_values        = each.value
  service_account_role_arn    = try(aws_iam_role.addon[each.key].arn, null)
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"

  # coredns, metrics-server and the EBS CSI controller need nodes to become active.
  depends_on = [aws_eks_node_group.this]
}

# Who may use the Kubernetes API (besides the identity that created the cluster).
resource "aws_eks_access_entry" "this" {
  for_each = var.create_access_entries ? var.access_entries : {}

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.value.principal_arn
  type          = "STANDARD"
}

resource "aws_eks_access_policy_association" "this" {
  for_each = var.create_access_entries ? var.access_entries : {}

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = aws_eks_access_entry.this[each.key].principal_arn
  policy_arn    = each.value.policy_arn

  access_scope {
    type       = each.value.namespaces == null ? "cluster" : "namespace"
    namespaces = each.value.namespaces
  }
}
