# The instance's own identity. It grants exactly one thing: registering with
# AWS Systems Manager, so Session Manager can open a shell or a port forward
# without port 22 (make tunnel-ssm). The stack itself calls no AWS API.

data "aws_iam_policy_document" "appliance_assume" {
  statement {
    sid     = "Ec2AssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "appliance" {
  name_prefix        = "${var.name}-"
  description        = "Role of the ${var.name} EC2 host: SSM Session Manager only"
  assume_role_policy = data.aws_iam_policy_document.appliance_assume.json
}

resource "aws_iam_role_policy_attachment" "appliance_ssm" {
  role       = aws_iam_role.appliance.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "appliance" {
  name_prefix = "${var.name}-"
  role        = aws_iam_role.appliance.name
}
