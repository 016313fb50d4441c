"""Docs that cannot drift: each table of variables against its source, and the pairs of
values that must stay in step.

The role READMEs and terraform/README.md are written by hand (their "meaning" column says
more than argument_specs can), so these tests fail the moment a table and its source
differ: a variable added, renamed or removed on one side only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.infra.test_terraform import TF_DIR, parse_config

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (REPO / "ansible" / "roles").iterdir() if (p / "meta").is_dir())


def table_names(markdown: str) -> set[str]:
    """The names in the first column of every table row that starts with a `name`.

    A row may name several: "`x_host` / `_port`" is x_host and x_port (a leading "_"
    replaces as many trailing words of the name before it).
    """
    names: set[str] = set()
    for line in markdown.splitlines():
        if not line.startswith("| `"):
            continue
        previous = None
        for token in re.findall(r"`([A-Za-z0-9_]+)`", line.split("|")[1]):
            if token.startswith("_") and previous:
                token = previous.rsplit("_", token.count("_"))[0] + token
            names.add(token)
            previous = token
    return names


def spec_options(role: Path) -> dict[str, dict[str, dict]]:
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    return {entry: spec.get("options") or {} for entry, spec in specs.items()}


def readme_drift(role: Path, readme: str) -> tuple[list[str], list[str]]:
    """(in argument_specs but not in the README, in the README but not in argument_specs)"""
    options = set().union(*(set(o) for o in spec_options(role).values()))
    documented = {n for n in table_names(readme) if n.startswith(role.name)}
    return sorted(options - documented), sorted(documented - options)


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_a_roles_readme_table_names_exactly_its_argument_specs(role: Path):
    assert readme_drift(role, (role / "README.md").read_text()) == ([], [])


def test_a_readme_that_lost_a_row_or_kept_a_renamed_one_is_caught():
    role = REPO / "ansible" / "roles" / "docker"
    readme = (role / "README.md").read_text()
    lost = "\n".join(x for x in readme.splitlines() if not x.startswith("| `docker_data_root`"))
    assert readme_drift(role, lost) == (["docker_data_root"], [])
    renamed = readme.replace("`docker_data_root`", "`docker_root_dir`")
    assert readme_drift(role, renamed) == (["docker_data_root"], ["docker_root_dir"])


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_a_roles_defaults_are_its_argument_specs(role: Path):
    defaults = set(yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {})
    main = spec_options(role).get("main", {})
    assert sorted(defaults - set(main)) == [], "a default argument_specs does not declare"
    # What has no default must be given: argument_specs says so (required: true).
    undefaulted = sorted(n for n, o in main.items() if n not in defaults and not o.get("required"))
    assert undefaulted == [], "declared without a default and not required"


def terraform_variables() -> dict[str, dict]:
    return parse_config([path.read_text() for path in sorted(TF_DIR.glob("*.tf"))]).variables


def test_terraforms_readme_table_names_exactly_its_variables():
    variables = set(terraform_variables())
    readme = (REPO / "terraform" / "README.md").read_text()
    section = readme.split("## Inputs", 1)[1].split("\n## ", 1)[0]
    documented = table_names(section)
    assert sorted(variables - documented) == [], "in variables.tf, missing from the README"
    assert sorted(documented - variables) == [], "in the README, not in variables.tf"


def test_the_table_parser_reads_shared_rows():
    rows = "| `x_metrics_host` / `_port` | a |\n| `y_src` / `_constraints_src` | b |\n| not | c |"
    assert table_names(rows) == {"x_metrics_host", "x_metrics_port", "y_src", "y_constraints_src"}


# ---------------------------------------------------------------- values kept in step


def terraform_default(name: str):
    return terraform_variables()[name]["default"]


def test_the_dynamic_inventorys_region_is_terraforms():
    inventory = yaml.safe_load((REPO / "inventories" / "aws" / "aws_ec2.yml").read_text())
    assert inventory["regions"] == [terraform_default("region")]


def test_the_dynamic_inventory_finds_the_data_volume_where_terraform_attaches_it():
    inventory = yaml.safe_load((REPO / "inventories" / "aws" / "aws_ec2.yml").read_text())
    device = terraform_default("data_volume_device")
    assert (
        f"'device_name', 'equalto', '{device}'" in inventory["compose"]["appliance_data_volume_id"]
    )


def test_the_kafka_image_is_the_version_of_the_local_brokers_jars():
    image = yaml.safe_load((REPO / "ansible/roles/kafka/defaults/main.yml").read_text())[
        "kafka_image"
    ]
    pom = (REPO / "app/runtime/maven/kafka-broker.pom.xml").read_text()
    jar = re.search(r"<artifactId>kafka_2\.13</artifactId>\s*<version>([^<]+)</version>", pom)
    assert jar is not None
    assert image == f"apache/kafka:{jar.group(1)}"


def test_the_metrics_namespace_is_the_one_the_alarms_and_the_host_role_watch():
    notifier = yaml.safe_load((REPO / "ansible/roles/notifier/defaults/main.yml").read_text())
    assert notifier["notifier_metrics_namespace"] == terraform_default("metrics_namespace")
