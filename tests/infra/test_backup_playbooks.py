"""make backup / make restore: what the playbooks run, and what they refuse before any change.

The real ansible-playbook runs against an inventory shaped like inventories/aws (its
group_vars copied), the host on a local connection. The refusals come before the first
task that touches a service; the command the playbooks hand to app/backup.py is rendered
from the same group_vars and compared with the roles' defaults.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "ansible" / "playbooks"
GROUP_VARS = REPO / "inventories" / "aws" / "group_vars" / "appliance"
BIN = Path(sys.executable).parent
# A password a URL must encode: a slash and an at sign.
WRITER_PASSWORD = "w/@rd-0123456789"


def role_default(role: str, name: str):
    return yaml.safe_load(
        (REPO / "ansible" / "roles" / role / "defaults" / "main.yml").read_text()
    )[name]


def run(tmp_path: Path, playbook: Path, *extra: str) -> subprocess.CompletedProcess:
    inventory = tmp_path / "inventory"
    group_vars = inventory / "group_vars" / "appliance"
    group_vars.mkdir(parents=True)
    shutil.copy(GROUP_VARS / "main.yml", group_vars / "main.yml")
    secrets = {
        "vault_clickhouse_password": WRITER_PASSWORD,
        "vault_clickhouse_reader_password": "r" * 48,
        "vault_metabase_admin_email": "ops@example.com",
        "vault_metabase_admin_password": "a" * 48,
        "vault_metabase_db_password": "d" * 48,
        "vault_metabase_encryption_secret_key": "k" * 44,
        "vault_notify_webhook_url": "",
    }
    (group_vars / "vault.yml").write_text(yaml.safe_dump(secrets))
    (inventory / "hosts.yml").write_text(
        "all:\n  children:\n    appliance:\n      hosts:\n"
        "        box:\n          ansible_connection: local\n"
        f"          ansible_python_interpreter: {sys.executable}\n"
    )
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible" / "ansible.cfg"))
    env["PATH"] = f"{BIN}:{env['PATH']}"
    return subprocess.run(
        [BIN / "ansible-playbook", "-i", inventory / "hosts.yml", playbook, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_the_playbooks_run_app_backup_with_the_roles_paths_and_the_writer(tmp_path):
    out = tmp_path / "rendered.json"
    probe = tmp_path / "probe.yml"
    probe.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Render what backup.yml and restore.yml run",
                    "hosts": "appliance",
                    "gather_facts": False,
                    "vars_files": [str(PLAYBOOKS / "vars" / "backup.yml")],
                    "tasks": [
                        {
                            "name": "Write it",
                            "ansible.builtin.copy": {
                                "dest": str(out),
                                "content": "{{ {'command': backup_command, "
                                "'url': backup_clickhouse_url, "
                                "'unit': backup_processor_unit, "
                                "'metabase': backup_metabase_container} | to_json }}",
                                "mode": "0600",
                            },
                        }
                    ],
                }
            ]
        )
    )
    done = run(tmp_path, probe)
    assert done.returncode == 0, done.stdout + done.stderr
    rendered = json.loads(out.read_text())
    runner = role_default("clickhouse", "clickhouse_migrations_home")
    assert rendered["command"] == [
        f"{runner}/venv/bin/python",
        "-m",
        "app.backup",
        "--backups-dir",
        "/var/lib/clickstream/backups",
        "--checkpoint-dir",
        "/var/lib/clickstream/checkpoints",
        "--metabase-container",
        role_default("metabase", "metabase_postgres_container_name"),
        "--metabase-user",
        role_default("metabase", "metabase_postgres_user"),
        "--metabase-database",
        role_default("metabase", "metabase_postgres_db"),
    ]
    assert rendered["url"] == "http://clickstream:w%2F%40rd-0123456789@127.0.0.1:8123/clickstream"
    assert rendered["unit"] == role_default("processor", "processor_service_name")
    assert rendered["metabase"] == role_default("metabase", "metabase_container_name")
    # The same folders the roles use: the clickhouse role's backups disk, the processor's
    # (and spark role's) checkpoint root.
    assert "appliance_backups_dir | default((appliance_data_dir" in role_default(
        "clickhouse", "clickhouse_backups_dir"
    )
    assert "appliance_checkpoint_dir | default((appliance_data_dir" in role_default(
        "processor", "processor_checkpoint_dir"
    )


def test_a_restore_without_a_name_is_refused_before_any_change(tmp_path):
    done = run(tmp_path, PLAYBOOKS / "restore.yml")
    assert done.returncode == 2
    assert "name the backup: make restore BACKUP=<name>" in done.stdout
    assert "Stop the processor" not in done.stdout


def test_a_restore_of_an_unfinished_backup_is_refused_before_any_change(tmp_path):
    done = run(tmp_path, PLAYBOOKS / "restore.yml", "-e", "backup_name=never-made")
    assert done.returncode == 2
    assert "never-made/manifest.json is missing: not a finished backup" in done.stdout
    assert "Stop the processor" not in done.stdout


@pytest.mark.parametrize("playbook", ["backup.yml", "restore.yml"])
def test_a_name_that_is_not_one_folder_is_refused_before_any_change(tmp_path, playbook):
    done = run(tmp_path, PLAYBOOKS / playbook, "-e", "backup_name=../etc")
    assert done.returncode == 2
    assert "Stop the processor" not in done.stdout
    assert "failed=1" in done.stdout


def test_make_restore_needs_a_name():
    done = subprocess.run(
        ["make", "--no-print-directory", "restore", "BACKUP="],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "error: name the backup: make restore BACKUP=<name>" in done.stderr
