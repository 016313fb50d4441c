variable "region" {
  description = "AWS region to build the appliance in. If you change it, change `regions` in inventories/aws/aws_ec2.yml too."
  type        = string
  default     = "us-west-2"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$", var.region))
    error_message = "The region must be an AWS region code such as us-west-2 or eu-central-1."
  }
}

variable "name" {
  description = "Name of the appliance: the host's Name tag (and so its Ansible inventory name) and the prefix of every resource name."
  type        = string
  default     = "clickstream-appliance"
  nullable    = false

  # IAM name prefixes allow 38 characters and "<name>-flow-logs-" is the longest we build.
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}[a-z0-9]$", var.name))
    error_message = "The name must be 2 to 21 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "vpc_cidr" {
  description = "IPv4 range of the appliance's VPC."
  type        = string
  default     = "10.0.0.0/16"
  nullable    = false

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 28
    error_message = "The VPC range must be an IPv4 CIDR between /16 and /28 (the sizes AWS accepts)."
  }
}

variable "public_subnet_cidr" {
  description = "IPv4 range of the public subnet the host lives in; must lie inside vpc_cidr."
  type        = string
  default     = "10.0.1.0/24"
  nullable    = false

  validation {
    condition     = can(cidrnetmask(var.public_subnet_cidr)) && tonumber(split("/", var.public_subnet_cidr)[1]) <= 28
    error_message = "The subnet range must be an IPv4 CIDR of /28 or larger."
  }
}

variable "admin_cidrs" {
  description = "IPv4 ranges allowed to reach SSH (port 22), e.g. [\"203.0.113.7/32\"] for your own address. Required: nothing else is ever open."
  type        = list(string)
  nullable    = false
  # No default on purpose: the operator must say who may connect.

  validation {
    condition     = length(var.admin_cidrs) > 0
    error_message = "Give at least one admin CIDR, e.g. admin_cidrs = [\"203.0.113.7/32\"] (your address: curl https://checkip.amazonaws.com)."
  }

  validation {
    condition     = alltrue([for cidr in var.admin_cidrs : can(cidrnetmask(cidr))])
    error_message = "Every admin CIDR must be an IPv4 range in CIDR notation, such as 203.0.113.7/32."
  }

  # A /0 is the whole internet. Refuse it unless the operator says so in a
  # second, explicit variable: one typo must not open SSH to everybody.
  validation {
    condition     = var.allow_ssh_from_anywhere || alltrue([for cidr in var.admin_cidrs : !endswith(cidr, "/0")])
    error_message = "admin_cidrs contains a /0 range, which opens SSH to the whole internet. Use your own address (x.x.x.x/32), or set allow_ssh_from_anywhere = true if you really mean it."
  }
}

variable "allow_ssh_from_anywhere" {
  description = "Explicit opt-in that lets admin_cidrs contain 0.0.0.0/0. Leave false: key-only SSH is still a target for every scanner on the internet."
  type        = bool
  default     = false
  nullable    = false
}

variable "instance_type" {
  description = "EC2 instance type. The default, m6i.xlarge (4 vCPU, 16 GiB, not burstable), holds Kafka, Spark master + worker + driver, ClickHouse and Metabase; see README.md for the sizing."
  type        = string
  default     = "m6i.xlarge"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "The instance type must look like m6i.xlarge."
  }
}

variable "min_memory_mib" {
  description = "Smallest instance memory (MiB) the plan accepts. The stack's JVMs and ClickHouse need about 12 GiB; below 16 GiB the kernel starts killing containers."
  type        = number
  default     = 16384
  nullable    = false

  validation {
    condition     = var.min_memory_mib >= 4096
    error_message = "min_memory_mib below 4096 cannot run the stack at all."
  }
}

variable "root_volume_size" {
  description = "Size of the encrypted gp3 root volume in GiB: OS, container images (~4 GiB), Kafka log, ClickHouse data, Spark checkpoints."
  type        = number
  default     = 50
  nullable    = false

  validation {
    condition     = var.root_volume_size >= 30 && var.root_volume_size <= 16384 && floor(var.root_volume_size) == var.root_volume_size
    error_message = "The root volume must be a whole number of GiB between 30 (images and data need room) and 16384 (the gp3 limit)."
  }
}

variable "data_volume_size" {
  description = "Size in GiB of the encrypted gp3 data volume (Kafka, ClickHouse, checkpoints, Metabase's Postgres). README, Operations: sizing gives the formula (python -m app.sizing); 260 GiB holds the defaults (200 events/s, a week of Kafka, 90 days of raw events) with 20 % for merges."
  type        = number
  default     = 260
  nullable    = false

  validation {
    condition     = var.data_volume_size >= 20 && var.data_volume_size <= 16384 && floor(var.data_volume_size) == var.data_volume_size
    error_message = "The data volume must be a whole number of GiB between 20 and 16384 (the gp3 limit)."
  }
}

variable "data_volume_snapshot_id" {
  description = "Restore: a snapshot (snap-...) of the data volume to build it from. Changing it replaces the data volume with one made from the snapshot (the instance is stopped to detach the old one); `make provision` then mounts it. Empty: a new, blank volume."
  type        = string
  default     = ""
  nullable    = false

  validation {
    condition     = var.data_volume_snapshot_id == "" || can(regex("^snap-[0-9a-f]{8,17}$", var.data_volume_snapshot_id))
    error_message = "data_volume_snapshot_id must be a snapshot id (snap-0123456789abcdef0), or empty."
  }
}

variable "data_volume_device" {
  description = "Device name the data volume is attached as (on Nitro instances it appears as an NVMe disk whose serial is the volume ID)."
  type        = string
  default     = "/dev/sdf"
  nullable    = false

  validation {
    condition     = can(regex("^/dev/(sd[f-p]|xvd[f-p])$", var.data_volume_device))
    error_message = "data_volume_device must be one of /dev/sdf to /dev/sdp (or xvdf to xvdp), the names EC2 recommends for data volumes."
  }
}

variable "snapshot_time" {
  description = "Time of day (UTC, hh:mm) of the data volume's daily snapshot."
  type        = string
  default     = "03:00"
  nullable    = false

  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", var.snapshot_time))
    error_message = "snapshot_time must be hh:mm in UTC, such as 03:00."
  }
}

variable "snapshot_retention_count" {
  description = "How many daily snapshots of the data volume to keep (the oldest is deleted when a new one is taken)."
  type        = number
  default     = 7
  nullable    = false

  validation {
    condition     = var.snapshot_retention_count >= 1 && var.snapshot_retention_count <= 1000 && floor(var.snapshot_retention_count) == var.snapshot_retention_count
    error_message = "snapshot_retention_count must be a whole number from 1 to 1000 (the DLM limit)."
  }
}

variable "termination_protection" {
  description = "Refuse to terminate the instance through the API (and so `terraform destroy`) until this is set to false and applied: the data volume and its history go with a careless destroy."
  type        = bool
  default     = true
  nullable    = false
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarms' SNS topic (AWS asks it to confirm). Empty: the topic has no subscription; add one by hand or set this."
  type        = string
  default     = ""
  nullable    = false

  validation {
    condition     = var.alarm_email == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be an e-mail address, or empty."
  }
}

variable "ssh_public_key_path" {
  description = "Path of the SSH public key to install for the `admin` user. The private key beside it (same path without .pub) is what Ansible and `make tunnel` use."
  type        = string
  default     = "~/.ssh/id_ed25519.pub"
  nullable    = false

  # Guards against pointing at the private key by mistake: its content must
  # never be sent anywhere.
  validation {
    condition     = endswith(var.ssh_public_key_path, ".pub")
    error_message = "ssh_public_key_path must name a public key file ending in .pub (never the private key)."
  }
}

variable "install_ssm_agent" {
  description = "Install the AWS SSM agent at first boot (the official Debian AMI has none), so Session Manager works as an alternative to SSH for `make tunnel-ssm`."
  type        = bool
  default     = true
  nullable    = false
}

variable "enable_flow_logs" {
  description = "Record the VPC's traffic metadata (VPC flow logs) in a KMS-encrypted CloudWatch log group."
  type        = bool
  default     = true
  nullable    = false
}

variable "flow_logs_traffic_type" {
  description = "Which flows to record: ACCEPT, REJECT or ALL."
  type        = string
  default     = "ALL"
  nullable    = false

  validation {
    condition     = contains(["ACCEPT", "REJECT", "ALL"], var.flow_logs_traffic_type)
    error_message = "flow_logs_traffic_type must be ACCEPT, REJECT or ALL."
  }
}

variable "flow_logs_retention_days" {
  description = "How many days CloudWatch keeps the flow logs (one of the values CloudWatch Logs accepts; a year by default, as most audits ask)."
  type        = number
  default     = 365
  nullable    = false

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_logs_retention_days)
    error_message = "flow_logs_retention_days must be a value CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "tags" {
  description = "Extra tags for every resource (cost centre, owner, ...). Project, ManagedBy, Role and Name are set by this module."
  type        = map(string)
  default     = {}
  nullable    = false

  # The inventory selects the host by these tags; letting them be overridden
  # would make the host silently vanish from Ansible.
  validation {
    condition     = length(setintersection(keys(var.tags), ["Project", "ManagedBy", "Role", "Name"])) == 0
    error_message = "tags must not set Project, ManagedBy, Role or Name: the inventory finds the host by them."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the appliance publishes its health metrics to (app.metrics; keep in step with the notifier role's notifier_metrics_namespace). The host may publish to this namespace only."
  type        = string
  default     = "Clickstream"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1 to 255 of A-Z a-z 0-9 . _ / # : - and must not start with AWS/."
  }
}

variable "disk_alarm_percent" {
  description = "Alarm when the data volume or the root disk is fuller than this (percent, as df shows it) for 5 minutes."
  type        = number
  default     = 80
  nullable    = false

  validation {
    condition     = var.disk_alarm_percent > 0 && var.disk_alarm_percent < 100
    error_message = "disk_alarm_percent must be between 0 and 100."
  }
}

variable "lag_alarm_records" {
  description = "Alarm when the job is more than this many events behind the topic's end for 10 minutes (default: 10 minutes of the default 200 events/s)."
  type        = number
  default     = 120000
  nullable    = false

  validation {
    condition     = var.lag_alarm_records >= 1
    error_message = "lag_alarm_records must be at least 1."
  }
}

variable "stall_alarm_seconds" {
  description = "Alarm when the job's last batch ended longer ago than this, for 3 minutes (seconds; above the processor's watchdog, 300 s, so a restart it handles alone stays quiet)."
  type        = number
  default     = 600
  nullable    = false

  validation {
    condition     = var.stall_alarm_seconds >= 60
    error_message = "stall_alarm_seconds must be at least 60."
  }
}
