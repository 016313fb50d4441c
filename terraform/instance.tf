# The appliance host: official Debian 12 (the OS the Ansible roles are tested
# on), locked-down metadata service, encrypted disk, SSH key from the operator.

data "aws_ami" "debian12" {
  most_recent = true
  # Debian's own AWS account, which publishes the official images
  # (https://wiki.debian.org/Cloud/AmazonEC2Image/Bookworm).
  owners = ["136693071363"]

  # "debian-12-amd64-20240717-1811"; the pattern leaves out the backports images.
  filter {
    name   = "name"
    values = ["debian-12-${local.debian_arch}-*"]
  }

  filter {
    name   = "architecture"
    values = [local.instance_arch]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }

  filter {
    name   = "root-device-type"
    values = ["ebs"]
  }
}

resource "aws_key_pair" "admin" {
  key_name_prefix = "${var.name}-"
  public_key      = trimspace(file(pathexpand(var.ssh_public_key_path)))
}

resource "aws_instance" "appliance" {
  ami           = data.aws_ami.debian12.id
  instance_type = var.instance_type
  key_name      = aws_key_pair.admin.key_name

  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.appliance.id]
  #checkov:skip=CKV_AWS_88:Single-host appliance reached by SSH; the public address only admits port 22 from admin_cidrs (security.tf).
  associate_public_ip_address = true

  iam_instance_profile = aws_iam_instance_profile.appliance.name
  # On by default: a destroy must first be allowed by setting it to false.
  disable_api_termination = var.termination_protection
  monitoring              = true # one-minute CloudWatch metrics: a streaming host is judged minute by minute
  ebs_optimized           = true

  # Debian's AMI has no SSM agent; without it Session Manager cannot reach the host.
  user_data = var.install_ssm_agent ? templatefile("${path.module}/templates/install-ssm-agent.sh.tftpl", {
    region      = var.region
    debian_arch = local.debian_arch
    # AWS's SSM agent signing key (fingerprint DE92 C7DA 3E56 E923 31D6 2A36 BC1F 495C
    # 97DD 04ED, checked by tests/infra/test_ssm_agent_install.py).
    ssm_agent_keyring = filebase64("${path.module}/templates/amazon-ssm-agent.gpg")
  }) : null

  metadata_options {
    http_endpoint = "enabled"
    # IMDSv2 only: a session token defeats SSRF-style credential theft.
    http_tokens = "required"
    # One hop: the host itself may ask, the containers behind Docker's bridge may not.
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size
    encrypted             = true
    delete_on_termination = true

    tags = merge(local.tags, {
      Name = "${var.name}-root"
    })
  }

  tags = {
    Name = var.name
    Role = "appliance"
  }

  lifecycle {
    # Both would replace the host, and its data with it: Debian publishes new
    # images often (the host is patched in place by apt instead), and a new
    # public key makes a new key pair (rotate keys on the host instead; EC2
    # installs this one at first boot only).
    ignore_changes = [ami, key_name]

    precondition {
      condition     = data.aws_ec2_instance_type.appliance.memory_size >= var.min_memory_mib
      error_message = "${var.instance_type} has ${data.aws_ec2_instance_type.appliance.memory_size} MiB of memory; the stack needs at least ${var.min_memory_mib} MiB (see README.md, Sizing)."
    }
  }
}
