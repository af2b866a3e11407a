# prod: a NAT gateway per zone, Multi-AZ database with deletion protection and 35 days of
# point-in-time recovery, on-demand nodes across three zones.
azs                      = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr                 = "10.30.0.0/16"
single_nat_gateway       = false
log_retention_days       = 365
monthly_budget_usd       = 3000
db_instance_class        = "db.m7g.large"
db_multi_az              = true
db_deletion_protection   = true
db_backup_retention_days = 35
db_max_allocated_storage = 500

eks_node_groups = {
  default = {
    instance_types = ["m7i.large"]
    capacity_type  = "ON_DEMAND"
    min_size       = 3
    max_size       = 12
    desired_size   = 3
  }
}
