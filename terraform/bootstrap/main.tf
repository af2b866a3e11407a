# Once per AWS account, by a person with administrator rights: the Terraform state bucket of
# every root, and GitHub Actions' OIDC provider that the workflows' roles trust.

data "aws_caller_identity" "current" {}

module "state_backend" {
  source = "../modules/state_backend"

  bucket                  = coalesce(var.state_bucket, "flowforge-tfstate-${data.aws_caller_identity.current.account_id}")
  force_destroy           = var.force_destroy
  deny_insecure_transport = var.deny_insecure_transport
}

module "github_oidc" {
  source = "../modules/github_oidc"
  count  = var.create_github_oidc_provider ? 1 : 0
}
