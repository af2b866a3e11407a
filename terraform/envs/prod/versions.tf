terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100.0"
    }
  }

  # S3 state with S3 native locking (a conditional write of the .tflock object next to the
  # state; no DynamoDB table). bucket and region come from terraform init:
  #   terraform init -backend-config="bucket=$STATE_BUCKET" -backend-config="region=$AWS_REGION"
  backend "s3" {
    key          = "flowforge/prod/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}
