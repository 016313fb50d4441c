"""`make provision` and the other AWS targets stop before changing anything.

Each test runs the real Makefile target in a sandbox: PATH holds only what
the test puts there (a stand-in `terraform` that records its calls, a
stand-in `ssh`, ...), HOME is empty, and no AWS setting of the developer's
leaks in. Nothing here talks to AWS or to any address but 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")
OUTPUTS_FIXTURE = Path(__file__).parent / "fixtures" / "aws" / "terraform_output.json"
sys.path.insert(0, str(REPO / "scripts" / "aws"))
from wait_for_ssh import wait_for_ssh  # noqa: E402

TERRAFORM_MISSING = (
    "error: terraform is not on PATH (install Terraform >= 1.9: "
    "https://developer.hashicorp.com/terraform/install)"
)
CREDENTIALS_MISSING = (
    "error: no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, or run `aws configure` / `aws sso login`)"
)
SSH_MISSING = (
    "error: ssh is not on PATH (install the OpenSSH client, e.g. `apt-get install openssh-client`)"
)

# Stand-in for terraform: records every call, answers `version` and `output`
# from the fixture, and fails `apply` so a provision run stops right there.
FAKE_TERRAFORM = f"""#!{sys.executable}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(["terraform", *args]) + "\\n")
if args == ["version", "-json"]:
    print(json.dumps({{"terraform_version": os.environ.get("FAKE_TF_VERSION", "1.11.4")}}))
    sys.exit(0)
command = args[1] if args and args[0].startswith("-chdir=") else args[0]
if command == "output":
    with open(os.environ["FAKE_TF_OUTPUTS"]) as f:
        outputs = json.load(f)
    if args[-1] == "-json":
        print(json.dumps(outputs))
    elif args[-1] in outputs:
        print(outputs[args[-1]]["value"], end="")
    else:
        # As Terraform 1.11 does before any apply: a warning box on stdout, exit 0.
        print("Warning: No outputs found")
        print("The state file either has no outputs defined, or all the defined outputs")
    sys.exit(0)
sys.exit(int(os.environ.get("FAKE_TF_APPLY_RC", "1")) if command == "apply" else 0)
"""

# Stand-in for a program that must only be found and called: records its argv.
FAKE_PROGRAM = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
"""


@dataclass
class Sandbox:
    root: Path
    bin: Path
    home: Path
    tf_dir: Path
    inventory: Path
    playbook: Path
    log: Path
    env: dict[str, str]

    def install(self, name: str, script: str = FAKE_PROGRAM) -> None:
        path = self.bin / name
        path.write_text(script)
        path.chmod(0o755)

    def tfvars(self, text: str) -> None:
        (self.tf_dir / "terraform.tfvars").write_text(text)

    def make(self, target: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                MAKE,
                "--no-print-directory",
                "-C",
                str(REPO),
                # The test must never rebuild the project's virtualenv.
                "-o",
                ".venv/.installed",
                target,
                f"TF_DIR={self.tf_dir}",
                f"AWS_INVENTORY={self.inventory}",
                f"DEPLOY_PLAYBOOK={self.playbook}",
                *args,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def terraform_calls(self) -> list[list[str]]:
        return [call[1:] for call in self.calls() if call[0] == "terraform"]


def errors(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    """Everything provision needs is present; each test takes one thing away."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # The only real programs the recipes call by name besides the stand-ins.
    for tool in ("rm",):
        os.symlink(shutil.which(tool), bin_dir / tool)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519.pub").write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZha2Uta2V5LWZvci10ZXN0cy1vbmx5LW5vdC1yZWFs "
        "operator@laptop\n"
    )
    tf_dir = tmp_path / "terraform"
    tf_dir.mkdir()
    inventory = tmp_path / "inventories" / "aws"
    inventory.mkdir(parents=True)
    playbook = tmp_path / "deploy.yml"
    playbook.write_text("- hosts: appliance\n  tasks: []\n")

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "TF_", "ANSIBLE_", "MAKE", "MFLAGS"))
    }
    env.update(
        PATH=str(bin_dir),
        HOME=str(home),
        FAKE_LOG=str(tmp_path / "calls.jsonl"),
        FAKE_TF_OUTPUTS=str(OUTPUTS_FIXTURE),
        # Credentials present, but nothing may look further (no instance metadata).
        AWS_ACCESS_KEY_ID="AKIAFAKEFORTESTS",
        AWS_SECRET_ACCESS_KEY="fake-secret-for-tests",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(home / ".aws" / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / ".aws" / "credentials"),
    )
    box = Sandbox(
        tmp_path, bin_dir, home, tf_dir, inventory, playbook, tmp_path / "calls.jsonl", env
    )
    box.install("terraform", FAKE_TERRAFORM)
    box.install("ssh")
    box.tfvars('admin_cidrs = ["203.0.113.7/32"]\n')
    return box


def without_credentials(box: Sandbox) -> None:
    del box.env["AWS_ACCESS_KEY_ID"]
    del box.env["AWS_SECRET_ACCESS_KEY"]


# ---------------------------------------------------------------- the positive controls


def test_plan_runs_terraform_when_everything_is_there(sandbox: Sandbox) -> None:
    proc = sandbox.make("plan")
    assert proc.returncode == 0, proc.stderr
    assert errors(proc) == []
    chdir = f"-chdir={sandbox.tf_dir}"
    assert sandbox.terraform_calls() == [
        ["version", "-json"],
        [chdir, "init", "-input=false"],
        [chdir, "plan", "-input=false"],
    ]


def test_provision_goes_on_to_init_and_apply_when_everything_is_there(sandbox: Sandbox) -> None:
    # The stand-in apply fails, so the run stops before SSH and Ansible.
    proc = sandbox.make("provision", "AUTO_APPROVE=1")
    assert proc.returncode != 0
    assert errors(proc) == []
    chdir = f"-chdir={sandbox.tf_dir}"
    assert sandbox.terraform_calls() == [
        ["version", "-json"],
        [chdir, "init", "-input=false"],
        [chdir, "apply", "-auto-approve", "-input=false"],
    ]


# ---------------------------------------------------------------- provision fails fast


def test_provision_without_terraform_names_it_and_changes_nothing(sandbox: Sandbox) -> None:
    (sandbox.bin / "terraform").unlink()
    proc = sandbox.make("provision")
    assert proc.returncode != 0
    assert errors(proc) == [TERRAFORM_MISSING]
    assert sandbox.calls() == []
    assert sorted(p.name for p in sandbox.tf_dir.iterdir()) == ["terraform.tfvars"]


def test_provision_without_aws_credentials_names_them_and_changes_nothing(sandbox: Sandbox) -> None:
    without_credentials(sandbox)
    proc = sandbox.make("provision")
    assert proc.returncode != 0
    assert errors(proc) == [CREDENTIALS_MISSING]
    assert sandbox.terraform_calls() == [["version", "-json"]]


def test_provision_with_an_unknown_aws_profile_names_it(sandbox: Sandbox) -> None:
    without_credentials(sandbox)
    sandbox.env["AWS_PROFILE"] = "nosuchprofile"
    proc = sandbox.make("provision")
    assert proc.returncode != 0
    assert errors(proc) == [
        "error: AWS profile not found: The config profile (nosuchprofile) could not be found "
        "(check AWS_PROFILE and ~/.aws/config)"
    ]
    assert sandbox.terraform_calls() == [["version", "-json"]]


def test_provision_without_admin_cidrs_names_them_and_changes_nothing(sandbox: Sandbox) -> None:
    (sandbox.tf_dir / "terraform.tfvars").unlink()
    proc = sandbox.make("provision")
    assert proc.returncode != 0
    assert errors(proc) == [
        f'error: admin_cidrs is not set (put admin_cidrs = ["<your address>/32"] in '
        f"{sandbox.tf_dir}/terraform.tfvars, see terraform.tfvars.example, "
        "or export TF_VAR_admin_cidrs)"
    ]
    assert sandbox.terraform_calls() == [["version", "-json"]]


def test_provision_refuses_ssh_from_the_whole_internet(sandbox: Sandbox) -> None:
    sandbox.tfvars('admin_cidrs = ["203.0.113.7/32", "0.0.0.0/0"]\n')
    proc = sandbox.make("provision")
    assert errors(proc) == [
        "error: admin_cidrs contains 0.0.0.0/0, which opens SSH to the whole internet "
        "(use your own address, or set allow_ssh_from_anywhere = true if you mean it)"
    ]
    assert sandbox.terraform_calls() == [["version", "-json"]]


def test_the_whole_internet_is_allowed_only_with_the_explicit_opt_in(sandbox: Sandbox) -> None:
    sandbox.tfvars('admin_cidrs = ["0.0.0.0/0"]\nallow_ssh_from_anywhere = true\n')
    proc = sandbox.make("plan")
    assert proc.returncode == 0, proc.stderr
    assert sandbox.terraform_calls()[-1] == [f"-chdir={sandbox.tf_dir}", "plan", "-input=false"]


def test_provision_refuses_an_admin_cidr_that_is_not_one(sandbox: Sandbox) -> None:
    sandbox.tfvars('admin_cidrs = ["my-laptop"]\n')
    proc = sandbox.make("provision")
    assert errors(proc) == [
        "error: admin_cidrs entry 'my-laptop' is not an IPv4 CIDR such as 203.0.113.7/32"
    ]


def test_admin_cidrs_from_the_environment_count_and_tfvars_win(sandbox: Sandbox) -> None:
    (sandbox.tf_dir / "terraform.tfvars").unlink()
    sandbox.env["TF_VAR_admin_cidrs"] = '["198.51.100.0/24"]'
    assert sandbox.make("plan").returncode == 0
    # As in Terraform, terraform.tfvars overrides TF_VAR_.
    sandbox.tfvars('admin_cidrs = ["0.0.0.0/0"]\n')
    assert errors(sandbox.make("plan"))[0].startswith("error: admin_cidrs contains 0.0.0.0/0")


def test_an_unreadable_tfvars_is_named(sandbox: Sandbox) -> None:
    sandbox.tfvars('admin_cidrs = ["203.0.113.7/32"\n')
    (error,) = errors(sandbox.make("plan"))
    assert error.startswith(f"error: {sandbox.tf_dir}/terraform.tfvars cannot be parsed: ")
    assert sandbox.terraform_calls() == [["version", "-json"]]


def test_provision_without_a_public_key_names_it(sandbox: Sandbox) -> None:
    (sandbox.home / ".ssh" / "id_ed25519.pub").unlink()
    proc = sandbox.make("provision")
    assert errors(proc) == [
        "error: SSH public key ~/.ssh/id_ed25519.pub not found (create one with "
        f"`ssh-keygen -t ed25519`, or set ssh_public_key_path in {sandbox.tf_dir}/terraform.tfvars)"
    ]
    assert sandbox.terraform_calls() == [["version", "-json"]]


def test_provision_refuses_a_private_key_as_public_key(sandbox: Sandbox) -> None:
    private = sandbox.home / ".ssh" / "other.pub"
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n")
    sandbox.tfvars('admin_cidrs = ["203.0.113.7/32"]\nssh_public_key_path = "~/.ssh/other.pub"\n')
    assert errors(sandbox.make("provision")) == [
        "error: ~/.ssh/other.pub is not an OpenSSH public key (create one with "
        f"`ssh-keygen -t ed25519`, or set ssh_public_key_path in {sandbox.tf_dir}/terraform.tfvars)"
    ]


def test_provision_with_an_old_terraform_names_the_version(sandbox: Sandbox) -> None:
    sandbox.env["FAKE_TF_VERSION"] = "1.5.7"
    assert errors(sandbox.make("provision")) == [
        "error: terraform 1.5.7 is too old (need >= 1.9: https://developer.hashicorp.com/terraform/install)"
    ]
    assert sandbox.terraform_calls() == [["version", "-json"]]


def test_provision_without_ssh_or_playbook_stops_before_building_anything(sandbox: Sandbox) -> None:
    # Both are needed only after the apply; finding out then would leave a
    # paid-for host half set up.
    (sandbox.bin / "ssh").unlink()
    sandbox.playbook.unlink()
    assert errors(sandbox.make("provision")) == [
        SSH_MISSING,
        f"error: deploy playbook {sandbox.playbook} is missing",
    ]
    assert sandbox.terraform_calls() == [["version", "-json"]]


def test_every_missing_prerequisite_is_one_line_each(sandbox: Sandbox) -> None:
    (sandbox.bin / "terraform").unlink()
    without_credentials(sandbox)
    (sandbox.tf_dir / "terraform.tfvars").unlink()
    (sandbox.home / ".ssh" / "id_ed25519.pub").unlink()
    proc = sandbox.make("provision")
    assert proc.returncode != 0
    assert [line.split(" (")[0] for line in errors(proc)] == [
        "error: terraform is not on PATH",
        "error: no AWS credentials found",
        "error: SSH public key ~/.ssh/id_ed25519.pub not found",
        "error: admin_cidrs is not set",
    ]
    assert sandbox.calls() == []


# ---------------------------------------------------------------- the other targets


def test_destroy_asks_and_a_wrong_answer_destroys_nothing(sandbox: Sandbox) -> None:
    (sandbox.inventory / "hosts.yml").write_text("all: {}\n")
    proc = sandbox.make("destroy", stdin="yes\n")
    assert proc.returncode != 0
    assert "aborted: nothing was destroyed" in proc.stderr
    assert sandbox.terraform_calls() == [["version", "-json"]]
    assert (sandbox.inventory / "hosts.yml").exists()


def test_destroy_with_no_terminal_destroys_nothing(sandbox: Sandbox) -> None:
    proc = sandbox.make("destroy", stdin="")
    assert proc.returncode != 0
    assert "aborted: nothing was destroyed" in proc.stderr
    assert sandbox.terraform_calls() == [["version", "-json"]]


def test_destroy_confirmed_destroys_and_forgets_the_host(sandbox: Sandbox) -> None:
    (sandbox.inventory / "hosts.yml").write_text("all: {}\n")
    sandbox.env["FAKE_TF_APPLY_RC"] = "0"  # the targeted apply that lifts the protection
    proc = sandbox.make("destroy", stdin="destroy\n")
    assert proc.returncode == 0, proc.stderr
    chdir = f"-chdir={sandbox.tf_dir}"
    assert sandbox.terraform_calls() == [
        ["version", "-json"],
        [chdir, "init", "-input=false"],
        # The typed "destroy" is the permission termination protection asks for: lifted
        # on the instance alone, then everything goes.
        [
            chdir,
            "apply",
            "-input=false",
            "-auto-approve",
            "-target=aws_instance.appliance",
            "-var=termination_protection=false",
        ],
        [chdir, "destroy", "-input=false", "-auto-approve", "-var=termination_protection=false"],
    ]
    assert not (sandbox.inventory / "hosts.yml").exists()


def test_destroy_without_credentials_fails_before_asking(sandbox: Sandbox) -> None:
    without_credentials(sandbox)
    proc = sandbox.make("destroy", "CONFIRM=destroy")
    assert errors(proc) == [CREDENTIALS_MISSING]
    assert sandbox.terraform_calls() == [["version", "-json"]]


def test_aws_inventory_writes_hosts_yml_from_the_outputs(sandbox: Sandbox) -> None:
    proc = sandbox.make("aws-inventory")
    assert proc.returncode == 0, proc.stderr
    hosts = sandbox.inventory / "hosts.yml"
    assert f"wrote {hosts}: host clickstream-appliance" in proc.stdout
    assert "ansible_host: 203.0.113.10" in hosts.read_text()


def test_deploy_without_any_inventory_names_it(sandbox: Sandbox) -> None:
    without_credentials(sandbox)
    assert errors(sandbox.make("deploy")) == [
        f"error: no inventory for the appliance: {sandbox.inventory}/hosts.yml is missing "
        "(run `make aws-inventory` or `make provision`) and there are no AWS credentials "
        "for the aws_ec2 dynamic inventory"
    ]


def test_tunnel_runs_the_ssh_forward_terraform_outputs(sandbox: Sandbox) -> None:
    proc = sandbox.make("tunnel")
    assert proc.returncode == 0, proc.stderr
    ssh_calls = [call for call in sandbox.calls() if call[0] == "ssh"]
    assert ssh_calls == [
        [
            "ssh",
            "-i",
            "/home/operator/.ssh/id_ed25519",
            "-N",
            "-L",
            "3000:127.0.0.1:3000",
            "-L",
            "4040:127.0.0.1:4040",
            "-L",
            "8080:127.0.0.1:8080",
            "admin@203.0.113.10",
        ]
    ]


# The real terraform too, where this machine has one: its `output` before any apply is
# what the stand-in imitates, and the recipes must be proven against the real thing.
TERRAFORMS = ["stand-in"] + (["real"] if shutil.which("terraform") else [])


@pytest.mark.parametrize("terraform", TERRAFORMS)
@pytest.mark.parametrize("target", ["tunnel", "tunnel-ssm"])
def test_tunnel_before_any_provision_says_so_and_runs_nothing(
    sandbox: Sandbox, tmp_path: Path, terraform: str, target: str
) -> None:
    empty = tmp_path / "empty-outputs.json"
    empty.write_text("{}")
    sandbox.env["FAKE_TF_OUTPUTS"] = str(empty)
    if terraform == "real":
        (sandbox.bin / "terraform").unlink()
        os.symlink(shutil.which("terraform"), sandbox.bin / "terraform")
    sandbox.install("aws")
    sandbox.install("session-manager-plugin")
    proc = sandbox.make(target)
    assert proc.returncode != 0
    assert errors(proc) == [
        f"error: no provisioned appliance in {sandbox.tf_dir} (run `make provision` first)"
    ]
    # Nothing Terraform printed was run as a command.
    assert "command not found" not in proc.stderr
    assert "+ " not in proc.stdout
    assert [call for call in sandbox.calls() if call[0] in ("ssh", "aws")] == []


def test_tunnel_refuses_an_output_that_is_not_an_ssh_command(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    outputs = json.loads(OUTPUTS_FIXTURE.read_text())
    outputs["tunnel_command"]["value"] = "touch /tmp/owned; ssh admin@203.0.113.10"
    altered = tmp_path / "outputs.json"
    altered.write_text(json.dumps(outputs))
    sandbox.env["FAKE_TF_OUTPUTS"] = str(altered)
    proc = sandbox.make("tunnel")
    assert proc.returncode != 0
    assert errors(proc) == [
        "error: the Terraform output tunnel_command is not one ssh command: "
        "'touch /tmp/owned; ssh admin@203.0.113.10'"
    ]
    assert [call for call in sandbox.calls() if call[0] == "ssh"] == []


def test_tunnel_without_ssh_names_it(sandbox: Sandbox) -> None:
    (sandbox.bin / "ssh").unlink()
    assert errors(sandbox.make("tunnel")) == [SSH_MISSING]
    assert sandbox.terraform_calls() == [["version", "-json"]]


def test_tunnel_ssm_names_the_missing_aws_tools(sandbox: Sandbox) -> None:
    assert errors(sandbox.make("tunnel-ssm")) == [
        "error: aws is not on PATH (install the AWS CLI: "
        "https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)",
        "error: session-manager-plugin is not on PATH (install it: https://docs.aws.amazon.com/"
        "systems-manager/latest/userguide/session-manager-working-with-install-plugin.html)",
    ]


def test_tunnel_ssm_runs_ssh_through_session_manager(sandbox: Sandbox) -> None:
    sandbox.install("aws")
    sandbox.install("session-manager-plugin")
    proc = sandbox.make("tunnel-ssm")
    assert proc.returncode == 0, proc.stderr
    ssh_calls = [call for call in sandbox.calls() if call[0] == "ssh"]
    # The ProxyCommand reaches ssh as one argument, quotes removed.
    assert ssh_calls == [
        [
            "ssh",
            "-i",
            "/home/operator/.ssh/id_ed25519",
            "-N",
            "-L",
            "3000:127.0.0.1:3000",
            "-L",
            "4040:127.0.0.1:4040",
            "-L",
            "8080:127.0.0.1:8080",
            "-o",
            "ProxyCommand=aws ssm start-session --region us-west-2 --target %h "
            "--document-name AWS-StartSSHSession --parameters portNumber=%p",
            "admin@i-0123456789abcdef0",
        ]
    ]


# ---------------------------------------------------------------- waiting for SSH


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, int]]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server, server.getsockname()[1]
    server.close()


def _serve_once(server: socket.socket, payload: bytes) -> threading.Thread:
    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(payload)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


def test_wait_for_ssh_returns_the_banner(listener: tuple[socket.socket, int]) -> None:
    server, port = listener
    _serve_once(server, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
    assert (
        wait_for_ssh("127.0.0.1", port, timeout=5, interval=0.1)
        == "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"
    )


def test_wait_for_ssh_does_not_take_any_open_port_for_ssh(
    listener: tuple[socket.socket, int],
) -> None:
    server, port = listener
    _serve_once(server, b"HTTP/1.1 400 Bad Request\r\n\r\n")
    assert wait_for_ssh("127.0.0.1", port, timeout=0.5, interval=0.1) is None


def test_wait_for_ssh_gives_up_on_a_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert wait_for_ssh("127.0.0.1", port, timeout=0.5, interval=0.1) is None


def test_destroy_stops_if_termination_protection_cannot_be_lifted(sandbox: Sandbox) -> None:
    (sandbox.inventory / "hosts.yml").write_text("all: {}\n")
    proc = sandbox.make("destroy", "CONFIRM=destroy")  # the stand-in apply fails
    assert proc.returncode != 0
    assert [call[1] for call in sandbox.terraform_calls()[1:]] == ["init", "apply"]
    assert (sandbox.inventory / "hosts.yml").exists()
