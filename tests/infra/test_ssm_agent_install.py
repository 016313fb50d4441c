"""The first-boot script installs the SSM agent only if its signature verifies: real sh, gpgv.

The script is rendered as Terraform's templatefile would and run with stand-ins for what
needs AWS or root (curl serves local files, dpkg and systemctl record their calls); the
signature check is the real gpgv against a key made here with gpg. The committed keyring
is AWS's SSM agent signing key, pinned by its fingerprint.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from tests.infra.conftest import make_gpg_key

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "terraform" / "templates"
# AWS's "SSM Agent <ssm-agent-signer@amazon.com>" key, as AWS publishes it for verifying
# the agent's packages.
AWS_SSM_AGENT_FINGERPRINT = "DE92C7DA3E56E92331D62A36BC1F495C97DD04ED"


def render(keyring: bytes, region: str = "eu-central-1", arch: str = "arm64") -> str:
    text = (TEMPLATES / "install-ssm-agent.sh.tftpl").read_text()
    values = {
        "region": region,
        "debian_arch": arch,
        "ssm_agent_keyring": base64.b64encode(keyring).decode(),
    }
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    assert "${" not in text, "the template uses a variable the test does not give"
    return text


def stand_in(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


@pytest.fixture(scope="module")
def signer(tmp_path_factory) -> dict[str, Path]:
    """A key, its keyring (binary, as the template carries AWS's), a package signed by it."""
    key = make_gpg_key(tmp_path_factory.mktemp("gnupg"), "signer")
    served = tmp_path_factory.mktemp("s3")
    package = served / "amazon-ssm-agent.deb"
    package.write_bytes(b"!<arch>\nnot really a package, but signed like one\n")
    key.gpg("--detach-sign", "-o", f"{package}.sig", str(package), capture_output=True)
    keyring = key.home / "signer.gpg"
    with keyring.open("wb") as out:
        key.gpg("--export", key.uid, stdout=out)
    return {"served": served, "keyring": keyring}


def run_script(
    script: str, served: Path, tmp_path: Path
) -> tuple[subprocess.CompletedProcess, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    # curl ... --output FILE URL: serve FILE from the folder by the URL's last part.
    stand_in(
        bin_dir,
        "curl",
        f'out=""; url=""\n'
        f'while [ $# -gt 0 ]; do case "$1" in --output) out="$2"; shift 2;; '
        f'--retry|--proto) shift 2;; -*) shift;; *) url="$1"; shift;; esac; done\n'
        f'echo "curl $url" >> {calls}\n'
        f'cp "{served}/$(basename "$url")" "$out"\n',
    )
    stand_in(bin_dir, "dpkg", f'echo "dpkg $*" >> {calls}\n')
    stand_in(bin_dir, "systemctl", f'echo "systemctl $*" >> {calls}\n')
    script_path = tmp_path / "install-ssm-agent.sh"
    script_path.write_text(script)
    proc = subprocess.run(
        ["sh", str(script_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path)},
    )
    return proc, calls.read_text() if calls.exists() else ""


def test_a_package_whose_signature_verifies_is_installed(signer, tmp_path):
    script = render(signer["keyring"].read_bytes())
    proc, calls = run_script(script, signer["served"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    base = "https://s3.eu-central-1.amazonaws.com/amazon-ssm-eu-central-1/latest/debian_arm64"
    lines = calls.splitlines()
    assert lines[:2] == [
        f"curl {base}/amazon-ssm-agent.deb",
        f"curl {base}/amazon-ssm-agent.deb.sig",
    ]
    assert lines[2].startswith("dpkg -i /") and lines[2].endswith("/amazon-ssm-agent.deb")
    assert lines[3:] == ["systemctl enable --now amazon-ssm-agent"]


def test_a_package_changed_after_signing_is_not_installed(signer, tmp_path):
    served = tmp_path / "s3"
    served.mkdir()
    for name in ("amazon-ssm-agent.deb", "amazon-ssm-agent.deb.sig"):
        (served / name).write_bytes((signer["served"] / name).read_bytes())
    with (served / "amazon-ssm-agent.deb").open("ab") as package:
        package.write(b"tampered")
    proc, calls = run_script(render(signer["keyring"].read_bytes()), served, tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "install-ssm-agent: the package's signature does not verify against AWS's SSM agent "
        "key: not installed"
    )
    assert "dpkg" not in calls and "systemctl" not in calls


def test_a_package_signed_by_another_key_is_not_installed(signer, tmp_path):
    # The real template carries AWS's key: a package signed here must not pass.
    aws_keyring = (TEMPLATES / "amazon-ssm-agent.gpg").read_bytes()
    proc, calls = run_script(render(aws_keyring), signer["served"], tmp_path)
    assert proc.returncode == 1
    assert "dpkg" not in calls


def test_the_committed_keyring_is_aws_ssm_agent_key(tmp_path):
    listing = subprocess.run(
        ["gpg", "--batch", "--show-keys", "--with-colons", str(TEMPLATES / "amazon-ssm-agent.gpg")],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GNUPGHOME": str(tmp_path)},
    ).stdout.splitlines()
    assert [line.split(":")[9] for line in listing if line.startswith("fpr:")] == [
        AWS_SSM_AGENT_FINGERPRINT
    ]
    assert [line.split(":")[9] for line in listing if line.startswith("uid:")] == [
        "SSM Agent <ssm-agent-signer@amazon.com>"
    ]


def test_the_instance_hands_the_committed_keyring_to_the_script():
    instance = (REPO / "terraform" / "instance.tf").read_text()
    assert (
        'ssm_agent_keyring = filebase64("${path.module}/templates/amazon-ssm-agent.gpg")'
        in instance
    )
