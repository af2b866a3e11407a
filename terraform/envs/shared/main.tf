# What all environments share: the image repositories (an image is built once per commit and
# promoted from staging to production unchanged, by digest) and the build workflow's push role.

data "aws_iam_openid_connect_provider" "github" {
  url = "https://token.actions.githubusercontent.com"
}

module "ecr" {
  source = "../../modules/ecr"

  name                     = "flowforge-shared"
  github_repository        = var.github_repository
  github_oidc_provider_arn = data.aws_iam_openid_connect_provider.github.arn
  pull_account_ids         = var.pull_account_ids
  force_delete             = var.force_delete_repositories
}
