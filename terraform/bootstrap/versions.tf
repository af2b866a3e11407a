terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100.0"
    }
  }

  # Local state on the first apply (the bucket does not exist yet). Afterwards the state can
  # move into the bucket it created: docs/deploy.md, step 2.
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "flowforge"
      Environment = "bootstrap"
      CostCenter  = var.cost_center
      ManagedBy   = "terraform"
      Component   = "bootstrap"
    }
  }
}
