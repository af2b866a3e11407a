terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100.0"
    }
  }

  # terraform init -backend-config="bucket=$STATE_BUCKET" -backend-config="region=$AWS_REGION"
  backend "s3" {
    key          = "flowforge/shared/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "flowforge"
      Environment = "shared"
      CostCenter  = var.cost_center
      ManagedBy   = "terraform"
      Repository  = var.github_repository
    }
  }
}
