# dev: small, one NAT gateway, single-AZ database without deletion protection (torn down and
# rebuilt freely). state_bucket is the bootstrap's output: terraform apply -var state_bucket=...
# or add it here.
azs                      = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr                 = "10.10.0.0/16"
single_nat_gateway       = true
log_retention_days       = 365
monthly_budget_usd       = 600
db_instance_class        = "db.t4g.small"
db_multi_az              = false
db_deletion_protection   = false
db_backup_retention_days = 7
db_max_allocated_storage = 50

eks_node_groups = {
  default = {
    instance_types = ["t3a.large", "t3.large"]
    capacity_type  = "SPOT"
    min_size       = 2
    max_size       = 4
    desired_size   = 2
  }
}
