output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "The VPC's range (k8s overlays: the API's NetworkPolicy, the ALB's nodes)."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Public subnets, one per zone."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets (EKS nodes and pods, Lambda functions), one per zone."
  value       = aws_subnet.private[*].id
}

output "private_subnet_cidrs" {
  description = "Ranges of the private subnets (the clients the database admits)."
  value       = aws_subnet.private[*].cidr_block
}

output "database_subnet_ids" {
  description = "Database subnets, one per zone."
  value       = aws_subnet.database[*].id
}

output "database_subnets_cidr" {
  description = "The range covering every database subnet (k8s overlays: NetworkPolicy allow-postgres)."
  value       = cidrsubnet(var.cidr, 4, 2)
}

output "endpoint_subnets_cidr" {
  description = "The range covering every interface endpoint subnet (k8s overlays: NetworkPolicy allow-aws-endpoints)."
  value       = cidrsubnet(var.cidr, 8, 48)
}

output "nat_public_ips" {
  description = "Public addresses of the NAT gateways (what the internet sees of outbound traffic)."
  value       = aws_eip.nat[*].public_ip
}
