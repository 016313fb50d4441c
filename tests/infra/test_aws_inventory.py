"""The AWS inventories find the appliance, and only it.

- inventories/aws/aws_ec2.yml runs through the real amazon.aws.aws_ec2 plugin
  (`ansible-inventory`, boto3) against a moto server holding the tagged
  appliance and instances that must not be picked.
- scripts/aws/inventory_from_outputs.py turns a `terraform output -json`
  fixture into hosts.yml, which `ansible-inventory --list` must accept.

The committed aws_ec2.yml names no endpoint; the test points boto3 at moto
through AWS_ENDPOINT_URL, as any operator could point it at a VPC endpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import hcl2
import pytest
import yaml
from hcl2.utils import SerializationOptions

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DYNAMIC_INVENTORY = REPO / "inventories" / "aws" / "aws_ec2.yml"
GENERATOR = REPO / "scripts" / "aws" / "inventory_from_outputs.py"
OUTPUTS_FIXTURE = Path(__file__).parent / "fixtures" / "aws" / "terraform_output.json"
REGION = "us-west-2"

APPLIANCE_TAGS = {
    "Name": "clickstream-appliance",
    "Project": "clickstream",
    "Role": "appliance",
    "ManagedBy": "terraform",
}


# ---------------------------------------------------------------- helpers


def _unwrap(value: Any) -> Any:
    """ansible-core 2.19 marks untrusted strings as {"__ansible_unsafe": "..."}."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {key: _unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unwrap(item) for item in value]
    return value


def _isolated_env(home: Path) -> dict[str, str]:
    """An environment with no AWS or Ansible settings of the developer's."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "ANSIBLE_", "BOTO"))
    }
    env.update(
        HOME=str(home),
        ANSIBLE_HOME=str(home / ".ansible"),
        ANSIBLE_LOCAL_TEMP=str(home / ".ansible" / "tmp"),
        # A source no plugin can read must fail the run, not become a warning.
        ANSIBLE_INVENTORY_UNPARSED_FAILED="true",
        ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="true",
        ANSIBLE_DEPRECATION_WARNINGS="false",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
    )
    return env


def ansible_inventory(source: Path, env: dict[str, str], plugins: str) -> dict[str, Any]:
    """`ansible-inventory --list` of `source`, run with only `plugins` enabled."""
    proc = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(source), "--list"],
        capture_output=True,
        text=True,
        env={**env, "ANSIBLE_INVENTORY_ENABLED": plugins},
        cwd=env["HOME"],
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return _unwrap(json.loads(proc.stdout))


def hosts_of(inventory: dict[str, Any]) -> set[str]:
    return set(inventory["_meta"]["hostvars"])


def generate(outputs_json: str, destination: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), "--output", str(destination)],
        input=outputs_json,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def world(moto_endpoint: str) -> dict[str, str]:
    """EC2 as the plugin will see it: the appliance, and three instances it must skip."""
    ec2 = boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def launch(tags: dict[str, str]) -> str:
        spec = {"ImageId": image, "MinCount": 1, "MaxCount": 1, "InstanceType": "m6i.xlarge"}
        if tags:
            tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
            spec["TagSpecifications"] = [{"ResourceType": "instance", "Tags": tag_list}]
        return ec2.run_instances(**spec)["Instances"][0]["InstanceId"]

    appliance = launch(APPLIANCE_TAGS)
    # The data volume, attached where terraform/storage.tf attaches it.
    zone = ec2.describe_instances(InstanceIds=[appliance])["Reservations"][0]["Instances"][0][
        "Placement"
    ]["AvailabilityZone"]
    data_volume = ec2.create_volume(AvailabilityZone=zone, Size=260, VolumeType="gp3")["VolumeId"]
    ec2.attach_volume(Device="/dev/sdf", InstanceId=appliance, VolumeId=data_volume)
    untagged = launch({})
    stopped = launch({**APPLIANCE_TAGS, "Name": "clickstream-appliance-stopped"})
    ec2.stop_instances(InstanceIds=[stopped])
    other_project = launch({**APPLIANCE_TAGS, "Name": "someone-elses", "Project": "other"})

    described = {
        i["InstanceId"]: i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
    }
    assert described[stopped]["State"]["Name"] == "stopped"
    for running in (appliance, untagged, other_project):
        assert described[running]["State"]["Name"] == "running"
        assert described[running]["PublicIpAddress"]
    return {
        "endpoint": moto_endpoint,
        "instance_id": appliance,
        "data_volume_id": data_volume,
        "public_ip": described[appliance]["PublicIpAddress"],
        "untagged_ip": described[untagged]["PublicIpAddress"],
    }


@pytest.fixture
def aws_env(world: dict[str, str], tmp_path: Path) -> dict[str, str]:
    env = _isolated_env(tmp_path)
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_ENDPOINT_URL=world["endpoint"],
    )
    return env


# ---------------------------------------------------------------- dynamic inventory


def test_dynamic_inventory_returns_exactly_the_tagged_running_host(
    world: dict[str, str], aws_env: dict[str, str], tmp_path: Path
) -> None:
    # A copy, so the test reads the committed file but none of the group_vars beside it.
    source = tmp_path / "aws_ec2.yml"
    shutil.copy(DYNAMIC_INVENTORY, source)
    inventory = ansible_inventory(source, aws_env, "amazon.aws.aws_ec2")

    assert hosts_of(inventory) == {"clickstream-appliance"}
    assert inventory["appliance"]["hosts"] == ["clickstream-appliance"]
    hostvars = inventory["_meta"]["hostvars"]["clickstream-appliance"]
    assert hostvars["ansible_host"] == world["public_ip"]
    assert hostvars["ansible_host"] != world["untagged_ip"]
    assert hostvars["ansible_user"] == "admin"
    assert hostvars["ansible_ssh_common_args"] == "-o StrictHostKeyChecking=accept-new"
    assert hostvars["ec2_instance_id"] == world["instance_id"]
    assert hostvars["ec2_region"] == REGION
    assert hostvars["appliance_data_volume_id"] == world["data_volume_id"]
    assert hostvars["appliance_data_volume_id"].startswith("vol-")


def test_dynamic_inventory_fails_loudly_without_credentials(
    world: dict[str, str], tmp_path: Path
) -> None:
    # The same run with no credentials must not quietly return an empty inventory.
    env = _isolated_env(tmp_path)
    env["AWS_ENDPOINT_URL"] = world["endpoint"]
    source = tmp_path / "aws_ec2.yml"
    shutil.copy(DYNAMIC_INVENTORY, source)
    proc = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(source), "--list"],
        capture_output=True,
        text=True,
        env={**env, "ANSIBLE_INVENTORY_ENABLED": "amazon.aws.aws_ec2"},
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "Unable to locate credentials" in proc.stderr


def test_dynamic_inventory_selects_by_the_tags_and_region_terraform_sets() -> None:
    options = SerializationOptions(
        with_comments=False, explicit_blocks=False, strip_string_quotes=True
    )
    tf_dir = REPO / "terraform"
    variables = hcl2.loads((tf_dir / "variables.tf").read_text(), serialization_options=options)
    region_default = next(v["region"]["default"] for v in variables["variable"] if "region" in v)
    instance = hcl2.loads((tf_dir / "instance.tf").read_text(), serialization_options=options)
    instance_tags = next(
        r["aws_instance"]["appliance"]["tags"] for r in instance["resource"] if "aws_instance" in r
    )
    common_tags = (tf_dir / "main.tf").read_text()

    config = yaml.safe_load(DYNAMIC_INVENTORY.read_text())
    assert config["plugin"] == "amazon.aws.aws_ec2"
    assert config["regions"] == [region_default] == [REGION]
    assert config["filters"] == {
        "tag:Project": "clickstream",
        "tag:Role": instance_tags["Role"],
        "tag:ManagedBy": "terraform",
        "instance-state-name": "running",
    }
    assert 'Project   = "clickstream"' in common_tags
    assert 'ManagedBy = "terraform"' in common_tags
    # Same host name as the static inventory: the Name tag, i.e. var.name.
    assert config["hostnames"] == ["tag:Name"]
    assert instance_tags["Name"] == "${var.name}"
    # Production-ready: no endpoint or credentials baked in.
    assert not {"endpoint_url", "aws_endpoint_url", "aws_access_key", "access_key"} & set(config)


# ---------------------------------------------------------------- static inventory


def test_fixture_matches_the_outputs_terraform_declares() -> None:
    options = SerializationOptions(
        with_comments=False, explicit_blocks=False, strip_string_quotes=True
    )
    declared = hcl2.loads(
        (REPO / "terraform" / "outputs.tf").read_text(), serialization_options=options
    )
    outputs = {name: body for block in declared["output"] for name, body in block.items()}
    fixture = json.loads(OUTPUTS_FIXTURE.read_text())
    assert set(fixture) == set(outputs)
    assert set(fixture["ansible_host"]["value"]) == set(outputs["ansible_host"]["value"])


def test_generated_inventory_is_valid_for_ansible_inventory(tmp_path: Path) -> None:
    hosts = tmp_path / "inventories" / "aws" / "hosts.yml"
    proc = generate(OUTPUTS_FIXTURE.read_text(), hosts)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wrote {hosts}: host clickstream-appliance"
    assert hosts.read_text().startswith(
        "# Generated by scripts/aws/inventory_from_outputs.py from `terraform output -json`.\n"
    )

    inventory = ansible_inventory(hosts, _isolated_env(tmp_path), "yaml")
    assert inventory["all"]["children"] == ["ungrouped", "appliance"]
    assert inventory["appliance"]["hosts"] == ["clickstream-appliance"]
    assert inventory["_meta"]["hostvars"] == {
        "clickstream-appliance": {
            "ansible_host": "203.0.113.10",
            "ansible_user": "admin",
            "ansible_ssh_private_key_file": "/home/operator/.ssh/id_ed25519",
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=accept-new",
            "ec2_instance_id": "i-0123456789abcdef0",
            "ec2_region": "us-west-2",
            "appliance_data_volume_id": "vol-0a1b2c3d4e5f60718",
        }
    }


def test_static_and_dynamic_inventories_together_yield_one_host(
    world: dict[str, str], aws_env: dict[str, str], tmp_path: Path
) -> None:
    # `make deploy` loads the whole folder; the appliance must appear once,
    # or the playbook would run twice on it.
    outputs = json.loads(OUTPUTS_FIXTURE.read_text())
    outputs["ansible_host"]["value"].update(
        address=world["public_ip"], instance_id=world["instance_id"]
    )
    folder = tmp_path / "aws"
    folder.mkdir()
    shutil.copy(DYNAMIC_INVENTORY, folder / "aws_ec2.yml")
    assert generate(json.dumps(outputs), folder / "hosts.yml").returncode == 0

    inventory = ansible_inventory(folder, aws_env, "amazon.aws.aws_ec2,yaml")
    assert hosts_of(inventory) == {"clickstream-appliance"}
    assert inventory["appliance"]["hosts"] == ["clickstream-appliance"]
    hostvars = inventory["_meta"]["hostvars"]["clickstream-appliance"]
    assert hostvars["ansible_host"] == world["public_ip"]
    assert hostvars["ansible_ssh_private_key_file"] == "/home/operator/.ssh/id_ed25519"


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ("", "error: Terraform has no outputs: has `make provision` run in this folder?"),
        ("{}", "error: Terraform has no outputs: has `make provision` run in this folder?"),
        (
            '{"public_ip": {"value": "203.0.113.10"}}',
            "error: the Terraform outputs have no ansible_host value",
        ),
        (
            json.dumps(
                {"ansible_host": {"value": {"name": "clickstream-appliance", "group": "appliance"}}}
            ),
            "error: the ansible_host output lacks "
            "address, user, private_key_file, instance_id, region, data_volume_id",
        ),
    ],
)
def test_generator_refuses_outputs_without_a_host(
    outputs: str, message: str, tmp_path: Path
) -> None:
    hosts = tmp_path / "hosts.yml"
    proc = generate(outputs, hosts)
    assert proc.returncode == 1
    assert proc.stderr.strip() == message
    assert not hosts.exists()


def test_generator_refuses_an_address_that_is_not_ipv4(tmp_path: Path) -> None:
    # An apply that never got a public IP leaves "" or a DNS name; neither may
    # become ansible_host silently.
    outputs = json.loads(OUTPUTS_FIXTURE.read_text())
    outputs["ansible_host"]["value"]["address"] = "ec2-203-0-113-10.compute.amazonaws.com"
    proc = generate(json.dumps(outputs), tmp_path / "hosts.yml")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "error: ansible_host.address 'ec2-203-0-113-10.compute.amazonaws.com' "
        "is not an IPv4 address"
    )
