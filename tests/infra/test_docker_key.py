"""The docker role trusts Docker's apt key only with the pinned fingerprint: real Ansible, real gpg.

The role's key tasks run on this machine (connection local) against keys made here with
gpg, served as file:// URLs in place of download.docker.com: the right fingerprint is
trusted, another key or a file that is no key is refused before apt could trust it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import make_gpg_key

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KEY_TASKS = REPO / "ansible" / "roles" / "docker" / "tasks" / "docker-ce-key.yml"


def make_key(home: Path, name: str) -> tuple[Path, str]:
    """A new OpenPGP key, exported armored; and its primary fingerprint."""
    key = make_gpg_key(home, name)
    exported = home / f"{name}.asc"
    with exported.open("wb") as out:
        key.gpg("--armor", "--export", key.uid, stdout=out)
    return exported, key.fingerprint


def run_key_tasks(tmp_path: Path, url: str, pinned: str) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "key.yml"
    playbook.write_text(
        "- hosts: localhost\n"
        "  connection: local\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        f"    - ansible.builtin.include_tasks: {KEY_TASKS}\n"
    )
    keyrings = tmp_path / "keyrings"
    return subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            "localhost,",
            str(playbook),
            "-e",
            json.dumps(
                {
                    "docker_ce_keyring_dir": str(keyrings),
                    "docker_ce_gpg_key_url": url,
                    "docker_ce_gpg_key_fingerprint": pinned,
                }
            ),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_PYTHON_INTERPRETER": sys.executable},
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    home = tmp_path_factory.mktemp("gnupg")
    return {name: make_key(home / name, name) for name in ("docker", "impostor")}


def test_the_key_with_the_pinned_fingerprint_is_trusted(keys, tmp_path):
    key, fingerprint = keys["docker"]
    # Pinned as Docker's guide prints it: in groups of four.
    spaced = " ".join(fingerprint[i : i + 4] for i in range(0, 40, 4))
    proc = run_key_tasks(tmp_path, f"file://{key}", spaced)
    assert proc.returncode == 0, proc.stdout
    assert (tmp_path / "keyrings" / "docker.asc").read_bytes() == key.read_bytes()


def test_another_key_is_refused_and_not_trusted(keys, tmp_path):
    key, impostor = keys["impostor"]
    _, pinned = keys["docker"]
    proc = run_key_tasks(tmp_path, f"file://{key}", pinned)
    assert proc.returncode == 2
    assert (
        f"The key at file://{key} has the fingerprint {impostor}, not the pinned {pinned} "
        "(docker_ce_gpg_key_fingerprint): it was not installed, and apt does not trust it."
    ) in " ".join(proc.stdout.split())
    assert not (tmp_path / "keyrings" / "docker.asc").exists()


def test_a_file_that_is_no_key_is_refused(keys, tmp_path):
    page = tmp_path / "error.html"
    page.write_text("<html>503 Service Unavailable</html>\n")
    _, pinned = keys["docker"]
    proc = run_key_tasks(tmp_path, f"file://{page}", pinned)
    assert proc.returncode == 2
    assert "has the fingerprint none (not an OpenPGP key), not the pinned" in " ".join(
        proc.stdout.split()
    )
    assert not (tmp_path / "keyrings" / "docker.asc").exists()
