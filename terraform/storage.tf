# The data volume: Kafka's log, ClickHouse, the Spark checkpoints and Metabase's
# Postgres live here, apart from the root disk, so the OS and the images can be
# rebuilt or resized without touching the data, and the data is snapshotted on
# its own (README, Operations: sizing and backups).

resource "aws_ebs_volume" "data" {
  #checkov:skip=CKV_AWS_189:Encrypted with the account's aws/ebs key like the root volume; a CMK adds grants for EC2, DLM and restores.
  availability_zone = aws_subnet.public.availability_zone
  type              = "gp3"
  size              = var.data_volume_size
  encrypted         = true
  # A restore builds the volume from one of the DLM snapshots (README, Operations).
  snapshot_id = var.data_volume_snapshot_id == "" ? null : var.data_volume_snapshot_id

  tags = merge(local.tags, {
    Name = "${var.name}-data"
    # The DLM policy below snapshots the volumes that carry this tag.
    Snapshot = "${var.name}-data"
  })
}

resource "aws_volume_attachment" "data" {
  device_name = var.data_volume_device
  volume_id   = aws_ebs_volume.data.id
  instance_id = aws_instance.appliance.id
  # Stop the instance before detaching: never pull the disk from under Kafka.
  stop_instance_before_detaching = true
}

# Daily snapshots of the data volume, the newest snapshot_retention_count kept.
data "aws_iam_policy_document" "dlm_assume" {
  statement {
    sid     = "DlmAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["dlm.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "dlm" {
  name_prefix        = "${var.name}-dlm-"
  description        = "Data Lifecycle Manager: snapshots of the ${var.name} data volume"
  assume_role_policy = data.aws_iam_policy_document.dlm_assume.json
}

resource "aws_iam_role_policy_attachment" "dlm" {
  role       = aws_iam_role.dlm.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"
}

resource "aws_dlm_lifecycle_policy" "data" {
  description        = "${var.name}: daily snapshots of the data volume"
  execution_role_arn = aws_iam_role.dlm.arn
  state              = "ENABLED"

  policy_details {
    resource_types = ["VOLUME"]
    target_tags = {
      Snapshot = "${var.name}-data"
    }

    schedule {
      name      = "daily"
      copy_tags = true

      create_rule {
        interval      = 24
        interval_unit = "HOURS"
        times         = [var.snapshot_time]
      }

      retain_rule {
        count = var.snapshot_retention_count
      }

      tags_to_add = {
        SnapshotCreator = "dlm"
      }
    }
  }

  tags = local.tags
}
