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

# The appliance's own health, published every minute by `python -m app.metrics` (a
# systemd timer of the notifier role) into the namespace below. Missing data is
# breaching: a silent exporter is as worrying as a bad reading.
locals {
  health_alarms = {
    data_volume_used = {
      metric      = "DataVolumeUsedPercent"
      threshold   = var.disk_alarm_percent
      periods     = 5
      description = "The data volume (Kafka, ClickHouse, checkpoints, Postgres) has been over ${var.disk_alarm_percent} % full for 5 minutes. At 100 % Kafka takes its log offline and inserts fail: grow data_volume_size (README, Operations)."
    }
    root_volume_used = {
      metric      = "RootVolumeUsedPercent"
      threshold   = var.disk_alarm_percent
      periods     = 5
      description = "The root disk (OS, virtualenvs, journal) has been over ${var.disk_alarm_percent} % full for 5 minutes."
    }
    kafka_lag = {
      metric      = "KafkaLag"
      threshold   = var.lag_alarm_records
      periods     = 10
      description = "The job has been more than ${var.lag_alarm_records} events behind the end of the topic for 10 minutes: it is not keeping up, and what it has not read leaves Kafka with the retention (README, Operations: runbooks)."
    }
    last_batch_age = {
      metric      = "SecondsSinceLastBatch"
      threshold   = var.stall_alarm_seconds
      periods     = 3
      description = "The job's last batch ended more than ${var.stall_alarm_seconds} s ago, 3 minutes running: the processor is down or stuck (its watchdog restarts it; see journalctl -u clickstream-processor)."
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "health" {
  for_each = local.health_alarms

  alarm_name          = "${var.name}-${replace(each.key, "_", "-")}"
  alarm_description   = each.value.description
  namespace           = var.metrics_namespace
  metric_name         = each.value.metric
  dimensions          = { InstanceId = aws_instance.appliance.id }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = each.value.periods
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = local.tags
}
