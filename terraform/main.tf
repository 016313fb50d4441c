# Values and look-ups shared by the files beside this one. Each file holds one
# concern: network.tf, security.tf, iam.tf, instance.tf, flow_logs.tf.

locals {
  # Fixed on purpose (see var.tags): inventories/aws/aws_ec2.yml selects the
  # host by Project and Role, and people filter costs by Project.
  tags = merge(var.tags, {
    Project   = "clickstream"
    ManagedBy = "terraform"
  })

  # The login user of the official Debian AMIs.
  ssh_user             = "admin"
  ssh_private_key_path = trimsuffix(pathexpand(var.ssh_public_key_path), ".pub")

  # The web UIs listen on the host's 127.0.0.1 only; people reach them through
  # SSH or SSM port forwarding, never through the security group.
  tunnel_ports = {
    metabase     = 3000
    spark_master = 8080
    spark_driver = 4040
  }
  tunnel_forwards = join(" ", [for port in values(local.tunnel_ports) : "-L ${port}:127.0.0.1:${port}"])

  # Debian names its images by the dpkg architecture; EC2 by its own.
  instance_arch = contains(data.aws_ec2_instance_type.appliance.supported_architectures, "x86_64") ? "x86_64" : "arm64"
  debian_arch   = local.instance_arch == "x86_64" ? "amd64" : "arm64"

  # Standard zones (no Local or Wavelength zones) that offer the instance
  # type, so a type missing from one zone never breaks the apply. The subnet
  # takes the first at creation and keeps it (network.tf).
  availability_zones = sort(tolist(setintersection(
    data.aws_availability_zones.standard.names,
    data.aws_ec2_instance_type_offerings.appliance.locations,
  )))
}

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

data "aws_availability_zones" "standard" {
  #checkov:skip=CKV_AWS_394:Used only to pick the subnet's zone at creation; ignore_changes on the subnet keeps it when AWS adds zones.
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

data "aws_ec2_instance_type_offerings" "appliance" {
  location_type = "availability-zone"

  filter {
    name   = "instance-type"
    values = [var.instance_type]
  }
}

data "aws_ec2_instance_type" "appliance" {
  instance_type = var.instance_type
}
