# The appliance's firewall. Inbound: SSH from the admin CIDRs, nothing else.
# Metabase (3000), the Spark UIs (8080, 4040), ClickHouse (8123, 9000) and
# Kafka (9092) are never opened: they listen on 127.0.0.1 or the private Docker
# network, and people reach the UIs through an SSH or SSM tunnel.
#
# Outbound: only what installing and running the stack needs. Destinations
# cannot be narrowed to addresses (mirrors and registries sit behind CDNs), so
# the rules narrow ports and protocols instead. DNS (the VPC resolver), the
# instance metadata service and the Amazon Time Sync Service are link-local
# and never filtered by security groups, so they need no rule.

locals {
  appliance_egress = {
    https = {
      ip_protocol = "tcp"
      port        = 443
      description = "HTTPS: Debian and Docker apt repositories, container registries, SSM agent endpoints"
    }
    http = {
      ip_protocol = "tcp"
      port        = 80
      description = "HTTP: Debian mirrors that serve (signed) packages over plain HTTP"
    }
    ntp = {
      ip_protocol = "udp"
      port        = 123
      description = "NTP: public time servers, for hosts not set to Amazon Time Sync"
    }
  }
}

resource "aws_security_group" "appliance" {
  name_prefix = "${var.name}-"
  description = "Clickstream appliance: SSH from admin CIDRs only; egress for packages, images and time"
  vpc_id      = aws_vpc.this.id

  tags = {
    Name = var.name
  }

  # A changed description replaces the group; build the new one before the
  # old one goes, so the instance is never left without a group.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each = toset(var.admin_cidrs)

  security_group_id = aws_security_group.appliance.id
  description       = "SSH from admin network ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value

  tags = {
    Name = "${var.name}-ssh"
  }
}

resource "aws_vpc_security_group_egress_rule" "appliance" {
  for_each = local.appliance_egress

  security_group_id = aws_security_group.appliance.id
  description       = each.value.description
  ip_protocol       = each.value.ip_protocol
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = "0.0.0.0/0"

  tags = {
    Name = "${var.name}-egress-${each.key}"
  }
}
