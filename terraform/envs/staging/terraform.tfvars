# staging: production's shape at a smaller size (three zones, Multi-AZ database, deletion
# protection), so that deploys and failovers are rehearsed on the real topology.
azs                      = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr                 = "10.20.0.0/16"
single_nat_gateway       = true
log_retention_days       = 365
monthly_budget_usd       = 1200
db_instance_class        = "db.t4g.medium"
db_multi_az              = true
db_deletion_protection   = true
db_backup_retention_days = 7
db_max_allocated_storage = 100

eks_node_groups = {
  default = {
    instance_types = ["m7i.large", "m6i.large"]
    capacity_type  = "SPOT"
    min_size       = 2
    max_size       = 6
    desired_size   = 3
  }
}
