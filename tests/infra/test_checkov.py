"""checkov over terraform/ reports no failed check, and every skip is inline and reasoned.

checkov runs from its own virtualenv (.venv-checkov, built by
`make .venv-checkov/.installed`, which `make test` depends on through
INFRA_DEPS), because it pins dependencies that clash with the project's.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
TF_DIR = REPO / "terraform"
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
CHECKOV_VERSION = "3.3.30"

# Each skip is a decision a reviewer signed off on; a new one must be added
# here on purpose, with its reason inline in the .tf file.
EXPECTED_SKIPS = {
    ("CKV_AWS_88", "aws_instance.appliance"),  # the appliance's public address
    ("CKV_AWS_394", "aws_availability_zones.standard"),  # zone picked once, then pinned
    ("CKV_AWS_109", "aws_iam_policy_document.flow_logs_key"),  # KMS key policy "*" = this key
    ("CKV_AWS_111", "aws_iam_policy_document.flow_logs_key"),
    ("CKV_AWS_356", "aws_iam_policy_document.flow_logs_key"),
    # The SSM agent's actions accept no resource but "*" (iam.tf).
    ("CKV_AWS_111", "aws_iam_policy_document.appliance_session_manager"),
    ("CKV_AWS_356", "aws_iam_policy_document.appliance_session_manager"),
    ("CKV_AWS_189", "aws_ebs_volume.data"),  # encrypted with the account's EBS key, not a CMK
}

# The design's security properties, each of which checkov must have checked
# and passed (so a scan that silently skipped our resources cannot pass).
MUST_PASS = {
    ("CKV_AWS_79", "aws_instance.appliance"),  # IMDSv2 required
    ("CKV_AWS_8", "aws_instance.appliance"),  # root volume encrypted
    ("CKV_AWS_126", "aws_instance.appliance"),  # detailed monitoring
    ("CKV_AWS_135", "aws_instance.appliance"),  # EBS optimised
    ("CKV2_AWS_41", "aws_instance.appliance"),  # has an IAM role
    ("CKV2_AWS_12", "aws_vpc.this"),  # default security group restricts all traffic
    ("CKV2_AWS_11", "aws_vpc.this"),  # flow logs enabled
    ("CKV_AWS_24", "aws_vpc_security_group_ingress_rule.ssh"),  # no SSH from 0.0.0.0/0
    ("CKV_AWS_23", "aws_vpc_security_group_ingress_rule.ssh"),  # rule described
    ("CKV_AWS_130", "aws_subnet.public"),  # no automatic public IPs
    ("CKV_AWS_158", "aws_cloudwatch_log_group.flow_logs[0]"),  # logs KMS-encrypted
    ("CKV_AWS_338", "aws_cloudwatch_log_group.flow_logs[0]"),  # logs kept a year
    ("CKV_AWS_7", "aws_kms_key.flow_logs[0]"),  # key rotation
    ("CKV_AWS_3", "aws_ebs_volume.data"),  # the data volume encrypted
    ("CKV_AWS_26", "aws_sns_topic.alarms"),  # the alarms topic encrypted
}


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    assert CHECKOV.is_file(), (
        f"{CHECKOV} is missing: run `make .venv-checkov/.installed` (make test depends on it)"
    )
    env = {
        **os.environ,
        # Offline: no guideline download from the Prisma Cloud platform.
        "BC_SKIP_MAPPING": "TRUE",
        "HOME": str(tmp_path_factory.mktemp("checkov-home")),
    }
    proc = subprocess.run(
        [str(CHECKOV), "--directory", str(TF_DIR), "--framework", "terraform", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path_factory.mktemp("checkov-cwd"),
        timeout=300,
    )
    assert proc.stdout.strip(), (
        f"checkov printed nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    )
    report = json.loads(proc.stdout)
    report["exit_code"] = proc.returncode
    return report


def _pairs(checks: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(check["check_id"], check["resource"]) for check in checks}


def test_checkov_is_the_pinned_version(scan: dict[str, Any]) -> None:
    assert scan["summary"]["checkov_version"] == CHECKOV_VERSION


def test_no_failed_checks_and_no_parsing_errors(scan: dict[str, Any]) -> None:
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range']}) "
        f"{c['check_name']}"
        for c in scan["results"]["failed_checks"]
    ]
    assert failed == []
    assert scan["summary"]["failed"] == 0
    assert scan["summary"]["parsing_errors"] == 0
    assert scan["results"]["parsing_errors"] == []
    assert scan["exit_code"] == 0


def test_the_design_properties_are_checked_and_pass(scan: dict[str, Any]) -> None:
    passed = _pairs(scan["results"]["passed_checks"])
    assert MUST_PASS - passed == set()
    # Every file with resources or data sources was scanned.
    results = scan["results"]["passed_checks"] + scan["results"]["skipped_checks"]
    files = {Path(c["file_path"]).name for c in results}
    assert files == {
        "alarms.tf",
        "flow_logs.tf",
        "iam.tf",
        "instance.tf",
        "main.tf",
        "network.tf",
        "security.tf",
        "storage.tf",
        "versions.tf",
    }


def test_skips_are_exactly_the_reviewed_ones_each_with_an_inline_reason(
    scan: dict[str, Any],
) -> None:
    skipped = scan["results"]["skipped_checks"]
    assert _pairs(skipped) == EXPECTED_SKIPS
    assert scan["summary"]["skipped"] == len(EXPECTED_SKIPS)
    for check in skipped:
        reason = check["check_result"]["suppress_comment"]
        where = f"{check['check_id']} on {check['resource']}"
        assert "\n" not in reason, where
        assert 30 <= len(reason) <= 140, f"{where}: reason must be one real line, got {reason!r}"
