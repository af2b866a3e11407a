provider "aws" {
  region = var.region

  # Every resource carries these (cost allocation: activate Environment and CostCenter as cost
  # allocation tags, docs/cost.md).
  default_tags {
    tags = {
      Project     = "flowforge"
      Environment = local.environment
      CostCenter  = var.cost_center
      ManagedBy   = "terraform"
      Repository  = var.github_repository
    }
  }
}
