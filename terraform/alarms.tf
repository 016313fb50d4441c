# Someone hears about it: an SNS topic (an e-mail subscription when alarm_email
# is set) and the instance's status checks. A failed system check (the AWS
# hardware under it) recovers the instance onto other hardware by itself.

resource "aws_sns_topic" "alarms" {
  name_prefix       = "${var.name}-alarms-"
  kms_master_key_id = "alias/aws/sns"
  tags              = local.tags
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count     = var.alarm_email == "" ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "instance_status" {
  alarm_name          = "${var.name}-instance-status-check"
  alarm_description   = "The appliance's own status check failed for 2 minutes (its OS: out of memory, a full root disk, a kernel problem)."
  namespace           = "AWS/EC2"
  metric_name         = "StatusCheckFailed_Instance"
  dimensions          = { InstanceId = aws_instance.appliance.id }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "system_status" {
  alarm_name          = "${var.name}-system-status-check"
  alarm_description   = "The AWS system under the appliance failed its status check for 2 minutes: EC2 recovers the instance onto other hardware (same ID, address and volumes)."
  namespace           = "AWS/EC2"
  metric_name         = "StatusCheckFailed_System"
  dimensions          = { InstanceId = aws_instance.appliance.id }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "breaching"
  alarm_actions = [
    aws_sns_topic.alarms.arn,
    "arn:${data.aws_partition.current.partition}:automate:${var.region}:ec2:recover",
  ]
  ok_actions = [aws_sns_topic.alarms.arn]
  tags       = local.tags
}
