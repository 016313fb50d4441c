"""The Terraform in terraform/ parses, and says what the design says.

No terraform binary or AWS is needed: python-hcl2 parses the files and the
tests read the resulting structure. Expressions stay text (e.g.
"${aws_vpc.this.id}"), so references are asserted as that text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2.utils import SerializationOptions

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
TF_DIR = REPO / "terraform"

# Ports that must never be reachable from outside the host: Metabase, Spark
# master and driver UIs, ClickHouse HTTP and native, Kafka.
PRIVATE_PORTS = (3000, 4040, 8080, 8123, 9000, 9092)

_OPTIONS = SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True
)


@dataclass
class Config:
    """The parsed blocks of a Terraform folder, indexed by kind and name."""

    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, doc: dict[str, Any]) -> None:
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    assert (rtype, name) not in self.resources, f"{rtype}.{name} declared twice"
                    self.resources[(rtype, name)] = body
        for block in doc.get("data", []):
            for dtype, named in block.items():
                for name, body in named.items():
                    self.data[(dtype, name)] = body
        for block in doc.get("variable", []):
            self.variables.update(block)
        for block in doc.get("output", []):
            self.outputs.update(block)
        for block in doc.get("locals", []):
            for key in block:
                assert key not in self.locals, f"local.{key} declared twice"
            self.locals.update(block)
        self.terraform += doc.get("terraform", [])
        for block in doc.get("provider", []):
            self.providers.update(block)

    def of_type(self, rtype: str) -> dict[str, dict[str, Any]]:
        return {name: body for (t, name), body in self.resources.items() if t == rtype}


def parse_config(texts: list[str]) -> Config:
    config = Config()
    for text in texts:
        config.add(hcl2.loads(text, serialization_options=_OPTIONS))
    return config


@pytest.fixture(scope="module")
def tf() -> Config:
    return parse_config([path.read_text() for path in sorted(TF_DIR.glob("*.tf"))])


def one(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(blocks) == 1, blocks
    return blocks[0]


# ---------------------------------------------------------------- firewall scanner


@dataclass(frozen=True)
class Rule:
    where: str
    direction: str  # "ingress" or "egress"
    protocol: str
    from_port: Any
    to_port: Any
    sources: tuple[str, ...]
    description: str | None


def _expand_for_each(body: dict[str, Any], tf: Config) -> list[dict[str, Any]]:
    """A rule resource per element, resolving `for_each = local.X` maps to their values."""
    for_each = body.get("for_each")
    match = re.fullmatch(r"\$\{local\.(\w+)\}", str(for_each)) if for_each else None
    if not match:
        return [body]
    expanded = []
    for value in tf.locals[match.group(1)].values():
        resolved = {}
        for key, attr in body.items():
            ref = re.fullmatch(r"\$\{each\.value\.(\w+)\}", str(attr))
            resolved[key] = value[ref.group(1)] if ref else attr
        expanded.append(resolved)
    return expanded


def firewall_rules(tf: Config) -> list[Rule]:
    """Every security group rule in the configuration, whatever resource type holds it."""
    rules: list[Rule] = []
    for name, body in tf.of_type("aws_security_group").items():
        for direction in ("ingress", "egress"):
            for rule in body.get(direction, []):
                sources = tuple(rule.get("cidr_blocks", []) + rule.get("ipv6_cidr_blocks", []))
                rules.append(
                    Rule(
                        f"aws_security_group.{name}",
                        direction,
                        str(rule.get("protocol")),
                        rule.get("from_port"),
                        rule.get("to_port"),
                        sources,
                        rule.get("description"),
                    )
                )
    for name, body in tf.of_type("aws_security_group_rule").items():
        sources = tuple(body.get("cidr_blocks", []) + body.get("ipv6_cidr_blocks", []))
        rules.append(
            Rule(
                f"aws_security_group_rule.{name}",
                body["type"],
                str(body.get("protocol")),
                body.get("from_port"),
                body.get("to_port"),
                sources,
                body.get("description"),
            )
        )
    for rtype, direction in (
        ("aws_vpc_security_group_ingress_rule", "ingress"),
        ("aws_vpc_security_group_egress_rule", "egress"),
    ):
        for name, body in tf.of_type(rtype).items():
            for rule in _expand_for_each(body, tf):
                source_keys = (
                    "cidr_ipv4",
                    "cidr_ipv6",
                    "prefix_list_id",
                    "referenced_security_group_id",
                )
                rules.append(
                    Rule(
                        f"{rtype}.{name}",
                        direction,
                        str(rule.get("ip_protocol")),
                        rule.get("from_port"),
                        rule.get("to_port"),
                        tuple(str(rule[k]) for k in source_keys if k in rule),
                        rule.get("description"),
                    )
                )
    return rules


def opened_private_ports(rule: Rule) -> list[int]:
    """The private ports a rule lets through (all of them for 'all traffic')."""
    if rule.protocol in ("-1", "all"):
        return list(PRIVATE_PORTS)
    try:
        low, high = int(rule.from_port), int(rule.to_port)
    except (TypeError, ValueError):
        # A port that is an unresolved expression could be anything.
        return list(PRIVATE_PORTS)
    return [port for port in PRIVATE_PORTS if low <= port <= high]


# ---------------------------------------------------------------- parsing and layout


def test_files_by_purpose_all_parse(tf: Config) -> None:
    names = sorted(path.name for path in TF_DIR.glob("*.tf"))
    assert names == [
        "alarms.tf",
        "flow_logs.tf",
        "iam.tf",
        "instance.tf",
        "main.tf",
        "network.tf",
        "outputs.tf",
        "security.tf",
        "storage.tf",
        "variables.tf",
        "versions.tf",
    ]
    # Everything the appliance is made of; a new resource is a design change.
    assert sorted(f"{rtype}.{name}" for rtype, name in tf.resources) == [
        "aws_cloudwatch_log_group.flow_logs",
        "aws_cloudwatch_metric_alarm.health",
        "aws_cloudwatch_metric_alarm.instance_status",
        "aws_cloudwatch_metric_alarm.system_status",
        "aws_default_security_group.this",
        "aws_dlm_lifecycle_policy.data",
        "aws_ebs_volume.data",
        "aws_flow_log.this",
        "aws_iam_instance_profile.appliance",
        "aws_iam_role.appliance",
        "aws_iam_role.dlm",
        "aws_iam_role.flow_logs",
        "aws_iam_role_policy.appliance_health_metrics",
        "aws_iam_role_policy.appliance_session_manager",
        "aws_iam_role_policy.flow_logs",
        "aws_iam_role_policy_attachment.dlm",
        "aws_instance.appliance",
        "aws_internet_gateway.this",
        "aws_key_pair.admin",
        "aws_kms_alias.flow_logs",
        "aws_kms_key.flow_logs",
        "aws_route.internet",
        "aws_route_table.public",
        "aws_route_table_association.public",
        "aws_security_group.appliance",
        "aws_sns_topic.alarms",
        "aws_sns_topic_subscription.alarm_email",
        "aws_subnet.public",
        "aws_volume_attachment.data",
        "aws_vpc.this",
        "aws_vpc_security_group_egress_rule.appliance",
        "aws_vpc_security_group_ingress_rule.ssh",
    ]
    assert (TF_DIR / "templates" / "install-ssm-agent.sh.tftpl").is_file()


def test_terraform_and_provider_versions_are_pinned(tf: Config) -> None:
    block = one(tf.terraform)
    assert block["required_version"] == ">= 1.9.0, < 2.0.0"
    providers = one(block["required_providers"])
    assert providers == {"aws": {"source": "hashicorp/aws", "version": "6.22.0"}}
    # Local state by default: the S3 backend is documented, not active.
    assert "backend" not in block


def test_region_defaults_to_us_west_2_and_drives_the_provider(tf: Config) -> None:
    assert tf.variables["region"]["default"] == "us-west-2"
    assert tf.providers["aws"]["region"] == "${var.region}"


def test_every_resource_is_tagged_with_project_and_managed_by(tf: Config) -> None:
    default_tags = one(tf.providers["aws"]["default_tags"])
    assert default_tags["tags"] == "${local.tags}"
    assert re.search(r'Project\s*=\s*"clickstream"', tf.locals["tags"])
    assert re.search(r'ManagedBy\s*=\s*"terraform"', tf.locals["tags"])
    # The fixed tags come last in merge(), so user tags cannot override them.
    assert tf.locals["tags"].startswith("${merge(var.tags, {")


def test_every_variable_is_typed_and_described(tf: Config) -> None:
    for name, body in tf.variables.items():
        assert body.get("type"), f"variable {name} has no type"
        assert len(body.get("description", "")) > 20, f"variable {name} has no real description"


def test_admin_cidrs_is_required_and_refuses_the_whole_internet(tf: Config) -> None:
    admin = tf.variables["admin_cidrs"]
    assert "default" not in admin
    assert admin["type"] == "${list(string)}"
    conditions = [v["condition"] for v in admin["validation"]]
    assert conditions == [
        "${length(var.admin_cidrs) > 0}",
        "${alltrue([for cidr in var.admin_cidrs : can(cidrnetmask(cidr))])}",
        "${var.allow_ssh_from_anywhere || "
        'alltrue([for cidr in var.admin_cidrs : !endswith(cidr, "/0")])}',
    ]
    assert tf.variables["allow_ssh_from_anywhere"]["default"] is False


# ---------------------------------------------------------------- network


def test_vpc_is_10_0_0_0_16_with_dns(tf: Config) -> None:
    assert tf.variables["vpc_cidr"]["default"] == "10.0.0.0/16"
    vpc = tf.resources[("aws_vpc", "this")]
    assert vpc["cidr_block"] == "${var.vpc_cidr}"
    assert vpc["enable_dns_support"] is True
    assert vpc["enable_dns_hostnames"] is True


def test_public_subnet_is_10_0_1_0_24_without_automatic_public_ips(tf: Config) -> None:
    assert tf.variables["public_subnet_cidr"]["default"] == "10.0.1.0/24"
    subnet = tf.resources[("aws_subnet", "public")]
    assert subnet["cidr_block"] == "${var.public_subnet_cidr}"
    assert subnet["vpc_id"] == "${aws_vpc.this.id}"
    assert subnet["map_public_ip_on_launch"] is False
    # The zone is chosen once; a later pick must not replace subnet and host.
    assert one(subnet["lifecycle"])["ignore_changes"] == ["availability_zone"]


def test_default_route_goes_to_the_internet_gateway(tf: Config) -> None:
    assert tf.resources[("aws_internet_gateway", "this")]["vpc_id"] == "${aws_vpc.this.id}"
    assert tf.resources[("aws_route_table", "public")]["vpc_id"] == "${aws_vpc.this.id}"
    assert tf.resources[("aws_route", "internet")] == {
        "route_table_id": "${aws_route_table.public.id}",
        "destination_cidr_block": "0.0.0.0/0",
        "gateway_id": "${aws_internet_gateway.this.id}",
    }
    assert tf.resources[("aws_route_table_association", "public")] == {
        "subnet_id": "${aws_subnet.public.id}",
        "route_table_id": "${aws_route_table.public.id}",
    }


def test_default_security_group_is_emptied(tf: Config) -> None:
    default_sg = tf.resources[("aws_default_security_group", "this")]
    assert default_sg["vpc_id"] == "${aws_vpc.this.id}"
    assert "ingress" not in default_sg
    assert "egress" not in default_sg


def test_flow_logs_are_an_option_on_by_default(tf: Config) -> None:
    assert tf.variables["enable_flow_logs"]["default"] is True
    flow_log = tf.resources[("aws_flow_log", "this")]
    assert flow_log["count"] == "${var.enable_flow_logs ? 1 : 0}"
    assert flow_log["vpc_id"] == "${aws_vpc.this.id}"
    assert flow_log["log_destination"] == "${aws_cloudwatch_log_group.flow_logs[0].arn}"
    log_group = tf.resources[("aws_cloudwatch_log_group", "flow_logs")]
    assert log_group["kms_key_id"] == "${aws_kms_key.flow_logs[0].arn}"
    assert tf.resources[("aws_kms_key", "flow_logs")]["enable_key_rotation"] is True


# ---------------------------------------------------------------- firewall


def test_ssh_from_admin_cidrs_is_the_only_ingress(tf: Config) -> None:
    ingress = [rule for rule in firewall_rules(tf) if rule.direction == "ingress"]
    assert ingress == [
        Rule(
            "aws_vpc_security_group_ingress_rule.ssh",
            "ingress",
            "tcp",
            22,
            22,
            ("${each.value}",),
            "SSH from admin network ${each.value}",
        )
    ]
    ssh = tf.resources[("aws_vpc_security_group_ingress_rule", "ssh")]
    assert ssh["for_each"] == "${toset(var.admin_cidrs)}"
    assert ssh["security_group_id"] == "${aws_security_group.appliance.id}"


def test_egress_is_https_http_and_ntp_only(tf: Config) -> None:
    egress = {
        (rule.protocol, rule.from_port, rule.to_port)
        for rule in firewall_rules(tf)
        if rule.direction == "egress"
    }
    assert egress == {("tcp", 443, 443), ("tcp", 80, 80), ("udp", 123, 123)}


def test_every_rule_and_group_is_described(tf: Config) -> None:
    rules = firewall_rules(tf)
    assert len(rules) == 4
    for rule in rules:
        assert rule.description, f"{rule.where} has no description"
    assert tf.resources[("aws_security_group", "appliance")]["description"]


def test_no_rule_opens_the_private_ports(tf: Config) -> None:
    opened = {
        f"{rule.where} {rule.protocol}/{rule.from_port}": opened_private_ports(rule)
        for rule in firewall_rules(tf)
    }
    assert opened == {
        "aws_vpc_security_group_ingress_rule.ssh tcp/22": [],
        "aws_vpc_security_group_egress_rule.appliance tcp/443": [],
        "aws_vpc_security_group_egress_rule.appliance tcp/80": [],
        "aws_vpc_security_group_egress_rule.appliance udp/123": [],
    }


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            'resource "aws_security_group" "x" {\n'
            '  ingress {\n    from_port = 3000\n    to_port = 3000\n    protocol = "tcp"\n'
            '    cidr_blocks = ["0.0.0.0/0"]\n  }\n}\n',
            [3000],
        ),
        (
            'resource "aws_security_group_rule" "x" {\n  type = "ingress"\n'
            '  from_port = 9000\n  to_port = 9100\n  protocol = "tcp"\n'
            '  cidr_blocks = ["10.0.0.0/8"]\n}\n',
            [9000, 9092],
        ),
        (
            'resource "aws_vpc_security_group_ingress_rule" "x" {\n  ip_protocol = "-1"\n'
            '  cidr_ipv4 = "0.0.0.0/0"\n}\n',
            list(PRIVATE_PORTS),
        ),
        (
            'resource "aws_vpc_security_group_egress_rule" "x" {\n  ip_protocol = "tcp"\n'
            '  from_port = 0\n  to_port = 65535\n  cidr_ipv4 = "0.0.0.0/0"\n}\n',
            list(PRIVATE_PORTS),
        ),
    ],
)
def test_the_port_scanner_catches_open_private_ports(snippet: str, expected: list[int]) -> None:
    # The scanner above must be able to fail: fed rules that open private
    # ports, it reports exactly those ports.
    (rule,) = firewall_rules(parse_config([snippet]))
    assert opened_private_ports(rule) == expected


# ---------------------------------------------------------------- instance


def test_ami_is_the_official_debian_12(tf: Config) -> None:
    ami = tf.data[("aws_ami", "debian12")]
    assert ami["owners"] == ["136693071363"]  # Debian's own AWS account
    assert ami["most_recent"] is True
    filters = {f["name"]: f["values"] for f in ami["filter"]}
    assert filters == {
        "name": ["debian-12-${local.debian_arch}-*"],
        "architecture": ["${local.instance_arch}"],
        "virtualization-type": ["hvm"],
        "root-device-type": ["ebs"],
    }
    assert tf.locals["debian_arch"] == '${local.instance_arch == "x86_64" ? "amd64" : "arm64"}'
    instance = tf.resources[("aws_instance", "appliance")]
    assert instance["ami"] == "${data.aws_ami.debian12.id}"
    # Neither a newer image nor a new public key may replace the running appliance.
    assert one(instance["lifecycle"])["ignore_changes"] == ["ami", "key_name"]


def test_imdsv2_is_required(tf: Config) -> None:
    metadata = one(tf.resources[("aws_instance", "appliance")]["metadata_options"])
    assert metadata == {
        "http_endpoint": "enabled",
        "http_tokens": "required",
        "http_put_response_hop_limit": 1,
        "instance_metadata_tags": "disabled",
    }


def test_root_volume_is_encrypted_gp3_of_variable_size(tf: Config) -> None:
    root = one(tf.resources[("aws_instance", "appliance")]["root_block_device"])
    assert root["encrypted"] is True
    assert root["volume_type"] == "gp3"
    assert root["volume_size"] == "${var.root_volume_size}"
    assert tf.variables["root_volume_size"]["default"] == 50


def test_instance_shape_monitoring_key_and_profile(tf: Config) -> None:
    instance = tf.resources[("aws_instance", "appliance")]
    assert instance["instance_type"] == "${var.instance_type}"
    assert tf.variables["instance_type"]["default"] == "m6i.xlarge"
    assert instance["monitoring"] is True
    assert instance["subnet_id"] == "${aws_subnet.public.id}"
    assert instance["vpc_security_group_ids"] == ["${aws_security_group.appliance.id}"]
    assert instance["key_name"] == "${aws_key_pair.admin.key_name}"
    key = tf.resources[("aws_key_pair", "admin")]
    assert key["public_key"] == "${trimspace(file(pathexpand(var.ssh_public_key_path)))}"
    assert instance["iam_instance_profile"] == "${aws_iam_instance_profile.appliance.name}"
    assert instance["tags"] == {"Name": "${var.name}", "Role": "appliance"}
    assert tf.variables["name"]["default"] == "clickstream-appliance"


def test_instance_profile_allows_ssm_session_manager_only(tf: Config) -> None:
    # No managed policy on the host's role: AmazonSSMManagedInstanceCore would also let it
    # read every SSM parameter of the account.
    attachments = tf.of_type("aws_iam_role_policy_attachment")
    assert [a["role"] for a in attachments.values()] == ["${aws_iam_role.dlm.name}"]
    policy = tf.resources[("aws_iam_role_policy", "appliance_session_manager")]
    assert policy["role"] == "${aws_iam_role.appliance.id}"
    assert policy["policy"] == "${data.aws_iam_policy_document.appliance_session_manager.json}"
    statements = tf.data[("aws_iam_policy_document", "appliance_session_manager")]["statement"]
    actions = sorted(a for st in statements for a in st["actions"])
    assert actions == [
        "ec2messages:AcknowledgeMessage",
        "ec2messages:DeleteMessage",
        "ec2messages:FailMessage",
        "ec2messages:GetEndpoint",
        "ec2messages:GetMessages",
        "ec2messages:SendReply",
        "ssm:UpdateInstanceInformation",
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
    ]
    # Nothing reads parameters or secrets, on any resource, and nothing is a wildcard.
    assert not any(re.match(r"ssm:Get|ssm:Describe|secretsmanager:|kms:|\*", a) for a in actions)
    assert all("*" not in a for a in actions)
    assume = one(tf.data[("aws_iam_policy_document", "appliance_assume")]["statement"])
    assert assume["actions"] == ["sts:AssumeRole"]
    assert one(assume["principals"]) == {"type": "Service", "identifiers": ["ec2.amazonaws.com"]}
    profile = tf.resources[("aws_iam_instance_profile", "appliance")]
    assert profile["role"] == "${aws_iam_role.appliance.name}"


def test_the_host_may_publish_metrics_to_its_own_namespace_only(tf: Config) -> None:
    policy = tf.resources[("aws_iam_role_policy", "appliance_health_metrics")]
    assert policy["role"] == "${aws_iam_role.appliance.id}"
    assert policy["policy"] == "${data.aws_iam_policy_document.appliance_health_metrics.json}"
    statement = one(tf.data[("aws_iam_policy_document", "appliance_health_metrics")]["statement"])
    # PutMetricData has no resource-level permission; the namespace condition is the limit.
    assert statement["actions"] == ["cloudwatch:PutMetricData"]
    assert one(statement["condition"]) == {
        "test": "StringEquals",
        "variable": "cloudwatch:namespace",
        "values": ["${var.metrics_namespace}"],
    }
    assert tf.variables["metrics_namespace"]["default"] == "Clickstream"


def test_health_alarms_watch_disks_lag_and_the_last_batch(tf: Config) -> None:
    from app import metrics

    alarm = tf.resources[("aws_cloudwatch_metric_alarm", "health")]
    assert alarm["for_each"] == "${local.health_alarms}"
    assert alarm["namespace"] == "${var.metrics_namespace}"
    assert alarm["dimensions"] == {"InstanceId": "${aws_instance.appliance.id}"}
    assert (alarm["statistic"], alarm["period"]) == ("Maximum", 60)
    assert alarm["comparison_operator"] == "GreaterThanThreshold"
    # A silent exporter (the host, the timer or ClickHouse down) is itself an alarm.
    assert alarm["treat_missing_data"] == "breaching"
    assert alarm["alarm_actions"] == ["${aws_sns_topic.alarms.arn}"]
    assert alarm["ok_actions"] == ["${aws_sns_topic.alarms.arn}"]
    watched = {
        name: (a["metric"], a["threshold"], a["periods"])
        for name, a in tf.locals["health_alarms"].items()
    }
    # Each metric name is one app.metrics publishes.
    assert watched == {
        "data_volume_used": (metrics.DATA_VOLUME_USED, "${var.disk_alarm_percent}", 5),
        "root_volume_used": (metrics.ROOT_VOLUME_USED, "${var.disk_alarm_percent}", 5),
        "kafka_lag": (metrics.KAFKA_LAG, "${var.lag_alarm_records}", 10),
        "last_batch_age": (metrics.SECONDS_SINCE_LAST_BATCH, "${var.stall_alarm_seconds}", 3),
    }
    assert tf.variables["disk_alarm_percent"]["default"] == 80
    assert tf.variables["lag_alarm_records"]["default"] == 120000
    # Above the processor's watchdog (300 s), which restarts a stuck query by itself.
    assert tf.variables["stall_alarm_seconds"]["default"] == 600


def test_data_volume_is_encrypted_gp3_attached_beside_the_instance(tf: Config) -> None:
    volume = tf.resources[("aws_ebs_volume", "data")]
    assert volume["encrypted"] is True
    assert volume["type"] == "gp3"
    assert volume["size"] == "${var.data_volume_size}"
    assert volume["availability_zone"] == "${aws_subnet.public.availability_zone}"
    # A restore: the volume built from a snapshot when one is named, blank otherwise.
    assert volume["snapshot_id"] == (
        '${var.data_volume_snapshot_id == "" ? null : var.data_volume_snapshot_id}'
    )
    assert tf.variables["data_volume_snapshot_id"]["default"] == ""
    # The README's sizing at the defaults (app/sizing.py: 252 GiB at 200 events/s).
    assert tf.variables["data_volume_size"]["default"] == 260
    attachment = tf.resources[("aws_volume_attachment", "data")]
    assert attachment == {
        "device_name": "${var.data_volume_device}",
        "volume_id": "${aws_ebs_volume.data.id}",
        "instance_id": "${aws_instance.appliance.id}",
        "stop_instance_before_detaching": True,
    }
    assert tf.outputs["data_volume_id"]["value"] == "${aws_ebs_volume.data.id}"


def test_the_data_volume_is_snapshotted_daily_and_the_newest_kept(tf: Config) -> None:
    volume_tags = tf.resources[("aws_ebs_volume", "data")]["tags"]
    policy = tf.resources[("aws_dlm_lifecycle_policy", "data")]
    assert policy["state"] == "ENABLED"
    assert policy["execution_role_arn"] == "${aws_iam_role.dlm.arn}"
    details = one(policy["policy_details"])
    assert details["resource_types"] == ["VOLUME"]
    # The policy finds the volume by the tag the volume carries.
    assert details["target_tags"] == {"Snapshot": "${var.name}-data"}
    assert volume_tags == (
        '${merge(local.tags, {Name = "${var.name}-data", Snapshot = "${var.name}-data"})}'
    )
    schedule = one(details["schedule"])
    assert one(schedule["create_rule"]) == {
        "interval": 24,
        "interval_unit": "HOURS",
        "times": ["${var.snapshot_time}"],
    }
    assert one(schedule["retain_rule"]) == {"count": "${var.snapshot_retention_count}"}
    assert tf.variables["snapshot_retention_count"]["default"] == 7
    dlm = tf.resources[("aws_iam_role_policy_attachment", "dlm")]
    assert dlm["policy_arn"] == (
        "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/"
        "AWSDataLifecycleManagerServiceRole"
    )


def test_termination_protection_is_on_by_default(tf: Config) -> None:
    instance = tf.resources[("aws_instance", "appliance")]
    assert instance["disable_api_termination"] == "${var.termination_protection}"
    assert tf.variables["termination_protection"]["default"] is True


def test_status_check_alarms_publish_to_an_encrypted_topic_and_recover(tf: Config) -> None:
    topic = tf.resources[("aws_sns_topic", "alarms")]
    assert topic["kms_master_key_id"] == "alias/aws/sns"
    subscription = tf.resources[("aws_sns_topic_subscription", "alarm_email")]
    assert subscription["count"] == '${var.alarm_email == "" ? 0 : 1}'
    assert subscription["endpoint"] == "${var.alarm_email}"
    assert tf.variables["alarm_email"]["default"] == ""
    alarms = tf.of_type("aws_cloudwatch_metric_alarm")
    assert {n: a["metric_name"] for n, a in alarms.items()} == {
        "instance_status": "StatusCheckFailed_Instance",
        "system_status": "StatusCheckFailed_System",
        "health": "${each.value.metric}",
    }
    for alarm in alarms.values():
        assert alarm["dimensions"] == {"InstanceId": "${aws_instance.appliance.id}"}
        assert alarm["treat_missing_data"] == "breaching"  # a host that stops reporting is down
        assert alarm["alarm_actions"][0] == "${aws_sns_topic.alarms.arn}"
        assert alarm["ok_actions"] == ["${aws_sns_topic.alarms.arn}"]
    assert alarms["system_status"]["alarm_actions"][1] == (
        "arn:${data.aws_partition.current.partition}:automate:${var.region}:ec2:recover"
    )
    assert tf.outputs["alarms_topic_arn"]["value"] == "${aws_sns_topic.alarms.arn}"


# ---------------------------------------------------------------- outputs


def test_outputs_give_what_ansible_and_people_need(tf: Config) -> None:
    assert set(tf.outputs) == {
        "instance_id",
        "public_ip",
        "public_dns",
        "region",
        "ami_id",
        "ssh_command",
        "tunnel_command",
        "tunnel_command_ssm",
        "ansible_host",
        "data_volume_id",
        "alarms_topic_arn",
    }
    for name, body in tf.outputs.items():
        assert body.get("description"), f"output {name} has no description"
    assert tf.outputs["public_ip"]["value"] == "${aws_instance.appliance.public_ip}"
    assert tf.outputs["public_dns"]["value"] == "${aws_instance.appliance.public_dns}"
    assert tf.outputs["instance_id"]["value"] == "${aws_instance.appliance.id}"
    assert tf.locals["ssh_user"] == "admin"


def test_tunnel_forwards_metabase_and_spark_uis_to_localhost(tf: Config) -> None:
    assert tf.locals["tunnel_ports"] == {
        "metabase": 3000,
        "spark_master": 8080,
        "spark_driver": 4040,
    }
    assert tf.locals["tunnel_forwards"] == (
        '${join(" ", [for port in values(local.tunnel_ports) : "-L ${port}:127.0.0.1:${port}"])}'
    )
    tunnel = tf.outputs["tunnel_command"]["value"]
    assert tunnel == (
        "ssh -i ${local.ssh_private_key_path} -N ${local.tunnel_forwards} "
        "${local.ssh_user}@${aws_instance.appliance.public_ip}"
    )
    ssm = tf.outputs["tunnel_command_ssm"]["value"]
    assert "--document-name AWS-StartSSHSession" in ssm
    assert ssm.endswith("${local.ssh_user}@${aws_instance.appliance.id}")


def test_ansible_host_output_names_the_host_like_the_dynamic_inventory(tf: Config) -> None:
    assert tf.outputs["ansible_host"]["value"] == {
        "name": "${var.name}",
        "group": "appliance",
        "address": "${aws_instance.appliance.public_ip}",
        "user": "${local.ssh_user}",
        "private_key_file": "${local.ssh_private_key_path}",
        "instance_id": "${aws_instance.appliance.id}",
        "region": "${var.region}",
        "data_volume_id": "${aws_ebs_volume.data.id}",
    }
