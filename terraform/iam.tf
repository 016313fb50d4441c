# The instance's own identity. It grants two things: registering with AWS
# Systems Manager, so Session Manager can open a shell or a port forward without
# port 22 (make tunnel-ssm), and publishing the appliance's health metrics to its
# own CloudWatch namespace (the alarms in alarms.tf). Nothing else calls AWS.
#
# Not the managed AmazonSSMManagedInstanceCore: that also lets the host read
# every SSM parameter of the account (ssm:GetParameter(s) on *) and use the
# patching and inventory features. These are the actions the SSM agent needs
# for Session Manager (AWS: "Create an IAM instance profile for Systems
# Manager", minimum permissions); none of them can be limited to a resource.

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

data "aws_iam_policy_document" "appliance_session_manager" {
  #checkov:skip=CKV_AWS_111:The SSM agent's registration and message channel actions have no resource-level permissions: "*" is all they accept.
  #checkov:skip=CKV_AWS_356:The same: these actions accept no resource but "*".
  statement {
    sid       = "RegisterWithSystemsManager"
    actions   = ["ssm:UpdateInstanceInformation"]
    resources = ["*"]
  }

  statement {
    sid = "SessionManagerChannels"
    actions = [
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }

  statement {
    sid = "AgentMessages"
    actions = [
      "ec2messages:AcknowledgeMessage",
      "ec2messages:DeleteMessage",
      "ec2messages:FailMessage",
      "ec2messages:GetEndpoint",
      "ec2messages:GetMessages",
      "ec2messages:SendReply",
    ]
    resources = ["*"]
  }
}

# The health metrics (app.metrics): PutMetricData has no resource-level permission, so
# the namespace condition is what keeps the host to its own metrics.
data "aws_iam_policy_document" "appliance_health_metrics" {
  statement {
    sid       = "PublishHealthMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metrics_namespace]
    }
  }
}

resource "aws_iam_role" "appliance" {
  name_prefix        = "${var.name}-"
  description        = "Role of the ${var.name} EC2 host: SSM Session Manager and its health metrics"
  assume_role_policy = data.aws_iam_policy_document.appliance_assume.json
}

resource "aws_iam_role_policy" "appliance_session_manager" {
  name   = "session-manager"
  role   = aws_iam_role.appliance.id
  policy = data.aws_iam_policy_document.appliance_session_manager.json
}

resource "aws_iam_role_policy" "appliance_health_metrics" {
  name   = "health-metrics"
  role   = aws_iam_role.appliance.id
  policy = data.aws_iam_policy_document.appliance_health_metrics.json
}

resource "aws_iam_instance_profile" "appliance" {
  name_prefix = "${var.name}-"
  role        = aws_iam_role.appliance.name
}
