"""The deploy playbook refuses a clear-text vault and placeholder secrets before any change.

The real ansible-playbook runs deploy.yml's preflight play (--tags preflight) against an
inventory shaped like inventories/aws (its group_vars copied), with the host on a local
connection: the refusals happen on the controller, before the first role.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
GROUP_VARS = REPO / "inventories" / "aws" / "group_vars" / "appliance"
BIN = Path(sys.executable).parent

GOOD = {
    "vault_clickhouse_password": "w" * 48,
    "vault_clickhouse_reader_password": "r" * 48,
    "vault_metabase_admin_email": "ops@example.com",
    "vault_metabase_admin_password": "a" * 48,
    "vault_metabase_db_password": "d" * 48,
    "vault_metabase_encryption_secret_key": "k" * 44,
    "vault_spark_auth_secret": "s" * 64,
    "vault_notify_webhook_url": "",
}
SECRETS = [v for v in GOOD.values() if len(v) > 20]


def deploy(tmp_path: Path, vault: dict[str, str] | str | None, encrypt: bool = True):
    inventory = tmp_path / "inventory"
    group_vars = inventory / "group_vars" / "appliance"
    group_vars.mkdir(parents=True)
    shutil.copy(GROUP_VARS / "main.yml", group_vars / "main.yml")
    (inventory / "hosts.yml").write_text(
        "all:\n  children:\n    appliance:\n      hosts:\n"
        "        box:\n          ansible_connection: local\n"
        f"          ansible_python_interpreter: {sys.executable}\n"
    )
    password_file = tmp_path / "vault-pass"
    password_file.write_text("test-vault-password\n")
    vault_file = group_vars / "vault.yml"
    if vault is not None:
        if not isinstance(vault, str):
            vault = "".join(f"{name}: '{value}'\n" for name, value in vault.items())
        text = vault
        vault_file.write_text("---\n" + text)
        if encrypt:
            vault_tool = [BIN / "ansible-vault", "encrypt", "--vault-password-file"]
            subprocess.run(
                [*vault_tool, password_file, vault_file],
                check=True,
                capture_output=True,
            )
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible" / "ansible.cfg"))
    env["PATH"] = f"{BIN}:{env['PATH']}"
    return subprocess.run(
        [
            BIN / "ansible-playbook",
            "-i",
            inventory / "hosts.yml",
            REPO / "ansible" / "playbooks" / "deploy.yml",
            "--tags",
            "preflight",
            "--vault-password-file",
            password_file,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_real_secrets_in_an_encrypted_vault_pass_and_are_never_shown(tmp_path):
    run = deploy(tmp_path, GOOD)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "failed=0" in run.stdout
    assert not any(secret in run.stdout + run.stderr for secret in SECRETS)


def test_a_clear_text_vault_is_refused(tmp_path):
    run = deploy(tmp_path, GOOD, encrypt=False)
    assert run.returncode == 2
    assert "group_vars/appliance/vault.yml is not encrypted" in run.stdout
    assert "Refuse placeholders" not in run.stdout  # it stopped at the first refusal
    assert not any(secret in run.stdout + run.stderr for secret in SECRETS)


def test_a_missing_vault_is_refused(tmp_path):
    run = deploy(tmp_path, None)
    assert run.returncode == 2
    assert "group_vars/appliance/vault.yml is missing" in run.stdout


def test_the_examples_placeholders_are_refused_by_name(tmp_path):
    example = (GROUP_VARS / "vault.example.yml").read_text()
    run = deploy(tmp_path, example.removeprefix("---\n"))
    assert run.returncode == 2
    assert (
        "These vault variables are missing, empty or still hold CHANGE-ME: "
        "vault_clickhouse_password, vault_clickhouse_reader_password, "
        "vault_metabase_admin_password, vault_metabase_db_password, "
        "vault_metabase_encryption_secret_key, vault_spark_auth_secret."
    ) in " ".join(run.stdout.split())


def test_a_missing_or_empty_secret_is_refused_by_name(tmp_path):
    vault = dict(GOOD, vault_clickhouse_reader_password="")
    del vault["vault_metabase_db_password"]
    run = deploy(tmp_path, vault)
    assert run.returncode == 2
    assert (
        "still hold CHANGE-ME: vault_clickhouse_reader_password, vault_metabase_db_password."
    ) in " ".join(run.stdout.split())
    assert not any(secret in run.stdout + run.stderr for secret in SECRETS)


def test_a_metabase_key_metabase_would_refuse_is_refused(tmp_path):
    run = deploy(tmp_path, dict(GOOD, vault_metabase_encryption_secret_key="short-key-15chr"))
    assert run.returncode == 2
    assert "vault_metabase_encryption_secret_key is shorter than 16 characters" in run.stdout
    assert "short-key-15chr" not in run.stdout + run.stderr


@pytest.mark.parametrize(
    "secret", ["short-secret-15", "a spark secret with blanks", "back\\slash-0123456789"]
)
def test_a_spark_secret_the_roles_would_refuse_is_refused(tmp_path, secret):
    run = deploy(tmp_path, dict(GOOD, vault_spark_auth_secret=secret))
    assert run.returncode == 2
    assert "vault_spark_auth_secret must be 16 or more letters" in " ".join(run.stdout.split())
    assert secret not in run.stdout + run.stderr


def test_a_host_that_never_answers_is_waited_for_then_named_with_the_admin_cidrs_hint(tmp_path):
    # Port 1 on the loopback: nothing listens, every connection is refused at once.
    hosts = tmp_path / "hosts.yml"
    hosts.write_text(
        "all:\n  children:\n    appliance:\n      hosts:\n        clickstream-appliance:\n"
        "          ansible_host: 127.0.0.1\n          ansible_port: 1\n"
    )
    env = dict(
        os.environ, ANSIBLE_CONFIG=str(REPO / "ansible" / "ansible.cfg"), ANSIBLE_NOCOLOR="1"
    )
    env["PATH"] = f"{BIN}:{env['PATH']}"
    run = subprocess.run(
        [
            BIN / "ansible-playbook",
            "-i",
            hosts,
            REPO / "ansible" / "playbooks" / "deploy.yml",
            "--tags",
            "connect",
            "-e",
            "appliance_connect_timeout=3",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 2
    assert "TASK [Connect, every 5 s, for up to appliance_connect_timeout seconds]" in run.stdout
    assert (
        "clickstream-appliance (127.0.0.1) did not answer over SSH within 3 s. Is your address "
        "in admin_cidrs (terraform/terraform.tfvars)? The EC2 console's system log shows "
        "whether the instance booted."
    ) in " ".join(run.stdout.split())
