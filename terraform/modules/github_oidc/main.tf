# GitHub Actions' OIDC identity provider: one per AWS account. Workflows exchange their job's
# OIDC token for the roles whose trust policies name this repository (modules/iam, modules/ecr):
# no AWS keys are stored in GitHub. AWS verifies GitHub's certificate through its own trust
# store, so no thumbprint is needed.
resource "aws_iam_openid_connect_provider" "this" {
  url            = var.url
  client_id_list = ["sts.amazonaws.com"]
}
