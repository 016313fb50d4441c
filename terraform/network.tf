# One VPC with one public subnet: the appliance is a single host, so there is
# no private tier and no NAT gateway to pay for. What keeps it private is the
# security group (security.tf) and the services binding to 127.0.0.1.

resource "aws_vpc" "this" {
  cidr_block = var.vpc_cidr

  # Both are needed for the instance to get a public DNS name (an output) and
  # to resolve AWS endpoints through the VPC resolver.
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = {
    Name = var.name
  }
}

# AWS creates every VPC with a default security group that lets its members
# talk to each other and reach anywhere. Adopting it here with no rules
# empties it, so nothing placed in it by accident gets any traffic.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${var.name}-default-unused"
  }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = var.name
  }
}

resource "aws_subnet" "public" {
  vpc_id            = aws_vpc.this.id
  cidr_block        = var.public_subnet_cidr
  availability_zone = local.availability_zones[0]

  # Only the appliance gets a public address, and it asks for one itself
  # (instance.tf); anything else launched here stays unreachable.
  map_public_ip_on_launch = false

  tags = {
    Name = "${var.name}-public"
  }

  lifecycle {
    # The zone is picked once, at creation. A new zone or a new instance type
    # offering may change the pick later; following it would replace the
    # subnet and with it the host and all its data.
    ignore_changes = [availability_zone]

    precondition {
      condition     = length(local.availability_zones) > 0
      error_message = "No standard availability zone in ${var.region} offers ${var.instance_type}; pick another instance_type or region."
    }
    precondition {
      condition     = cidrhost(var.vpc_cidr, 0) == cidrhost(format("%s/%s", split("/", var.public_subnet_cidr)[0], split("/", var.vpc_cidr)[1]), 0)
      error_message = "public_subnet_cidr (${var.public_subnet_cidr}) must lie inside vpc_cidr (${var.vpc_cidr})."
    }
  }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${var.name}-public"
  }
}

# The default route: everything not in the VPC goes to the internet gateway.
resource "aws_route" "internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
