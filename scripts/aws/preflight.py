"""Check what an AWS make target needs before it changes anything.

`make provision`, `plan`, `deploy`, `tunnel`, `tunnel-ssm`, `destroy` and
`aws-inventory` call this first. It only looks: it reads PATH, the local AWS
credential chain, files and Terraform variable values; it never calls AWS or
runs Terraform beyond `terraform version`. Every missing thing is one line on
stderr starting with "error:", and the exit status is 1 if there is any.

    python scripts/aws/preflight.py --tf-dir terraform provision
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import hcl2
from hcl2.utils import SerializationOptions

TERRAFORM_MIN_VERSION = (1, 9, 0)
TERRAFORM_INSTALL = "https://developer.hashicorp.com/terraform/install"
AWS_CLI_INSTALL = "https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
SSM_PLUGIN_INSTALL = (
    "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
    "session-manager-working-with-install-plugin.html"
)
DEFAULT_PUBLIC_KEY = "~/.ssh/id_ed25519.pub"
PUBLIC_KEY_PREFIXES = (
    "ssh-ed25519 ",
    "ssh-rsa ",
    "ecdsa-sha2-nistp",
    "sk-ssh-ed25519@openssh.com ",
)

_HCL_OPTIONS = SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True
)


class Context:
    """What the checks look at: the Terraform folder, the playbook, the inventory."""

    def __init__(self, tf_dir: Path, playbook: Path, inventory_dir: Path) -> None:
        self.tf_dir = tf_dir
        self.playbook = playbook
        self.inventory_dir = inventory_dir
        self._tf_vars: dict[str, object] | None = None

    def tf_var(self, name: str) -> object | None:
        """A variable's value as Terraform would see it, or None when unset."""
        if self._tf_vars is None:
            self._tf_vars = terraform_variables(self.tf_dir)
        return self._tf_vars.get(name)


def terraform_variables(tf_dir: Path) -> dict[str, object]:
    """Variable values from TF_VAR_* and the tfvars files Terraform loads by itself.

    Same precedence as Terraform: environment first, then terraform.tfvars,
    terraform.tfvars.json, then *.auto.tfvars(.json) in name order, each
    overriding the ones before.
    """
    values: dict[str, object] = {}
    for key, raw in os.environ.items():
        if key.startswith("TF_VAR_"):
            values[key[len("TF_VAR_") :]] = _parse_env_value(raw)
    files = [tf_dir / "terraform.tfvars", tf_dir / "terraform.tfvars.json"]
    files += sorted(tf_dir.glob("*.auto.tfvars")) + sorted(tf_dir.glob("*.auto.tfvars.json"))
    for path in files:
        if path.is_file():
            values.update(_read_tfvars(path))
    return values


class TfvarsError(Exception):
    """A variable value Terraform itself would refuse to read."""


def _parse_env_value(raw: str) -> object:
    # Terraform reads a list or map TF_VAR_ value as an HCL expression and any
    # other as the literal string.
    if not raw.lstrip().startswith(("[", "{")):
        return raw
    try:
        return hcl2.loads(f"value = {raw}\n", serialization_options=_HCL_OPTIONS)["value"]
    except Exception as exc:
        raise TfvarsError(f"a TF_VAR_ value is not valid HCL: {raw!r}") from exc


def _read_tfvars(path: Path) -> dict[str, object]:
    try:
        if path.suffix == ".json":
            return json.loads(path.read_text())
        return hcl2.loads(path.read_text(), serialization_options=_HCL_OPTIONS)
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TfvarsError(f"{path} cannot be parsed: {first_line}") from exc


# ---------------------------------------------------------------- the checks
# Each returns None when satisfied, or the one-line error without "error: ".


def check_terraform(_: Context) -> str | None:
    exe = shutil.which("terraform")
    if exe is None:
        return f"terraform is not on PATH (install Terraform >= 1.9: {TERRAFORM_INSTALL})"
    try:
        out = subprocess.run(
            [exe, "version", "-json"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        version = json.loads(out)["terraform_version"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return (
            f"{exe} does not answer `terraform version -json` (reinstall it: {TERRAFORM_INSTALL})"
        )
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:3])
    if parts < TERRAFORM_MIN_VERSION:
        return f"terraform {version} is too old (need >= 1.9: {TERRAFORM_INSTALL})"
    return None


def check_aws_credentials(_: Context) -> str | None:
    # botocore resolves the same chain Terraform's AWS provider does (env,
    # profile, SSO, ...) without calling AWS; whether the keys are still valid
    # is AWS's to say at plan time.
    import botocore.exceptions
    import botocore.session

    try:
        credentials = botocore.session.Session().get_credentials()
    except botocore.exceptions.ProfileNotFound as exc:
        return f"AWS profile not found: {exc} (check AWS_PROFILE and ~/.aws/config)"
    except botocore.exceptions.BotoCoreError as exc:
        return f"AWS credentials cannot be read: {exc}"
    if credentials is None:
        return (
            "no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or run `aws configure` / `aws sso login`)"
        )
    return None


def check_public_key(ctx: Context) -> str | None:
    configured = ctx.tf_var("ssh_public_key_path")
    shown = str(configured) if configured else DEFAULT_PUBLIC_KEY
    path = Path(os.path.expanduser(shown))
    hint = (
        "create one with `ssh-keygen -t ed25519`, "
        f"or set ssh_public_key_path in {ctx.tf_dir}/terraform.tfvars"
    )
    if not shown.endswith(".pub"):
        return (
            f"ssh_public_key_path {shown} does not end in .pub "
            "(it must name the public key, never the private one)"
        )
    if not path.is_file():
        return f"SSH public key {shown} not found ({hint})"
    if not path.read_text(errors="replace").startswith(PUBLIC_KEY_PREFIXES):
        return f"{shown} is not an OpenSSH public key ({hint})"
    return None


def check_admin_cidrs(ctx: Context) -> str | None:
    cidrs = ctx.tf_var("admin_cidrs")
    where = f"{ctx.tf_dir}/terraform.tfvars"
    if cidrs is None or cidrs == [] or cidrs == "":
        return (
            f'admin_cidrs is not set (put admin_cidrs = ["<your address>/32"] in {where}, '
            "see terraform.tfvars.example, or export TF_VAR_admin_cidrs)"
        )
    if not isinstance(cidrs, list):
        return f'admin_cidrs must be a list such as ["203.0.113.7/32"], not {cidrs!r}'
    for cidr in cidrs:
        try:
            network = ipaddress.IPv4Network(str(cidr), strict=False)
        except ValueError:
            return f"admin_cidrs entry {cidr!r} is not an IPv4 CIDR such as 203.0.113.7/32"
        if network.prefixlen == 0 and ctx.tf_var("allow_ssh_from_anywhere") not in (True, "true"):
            return (
                f"admin_cidrs contains {cidr}, which opens SSH to the whole internet "
                "(use your own address, or set allow_ssh_from_anywhere = true if you mean it)"
            )
    return None


def _on_path(program: str, how: str) -> Callable[[Context], str | None]:
    def check(_: Context) -> str | None:
        return None if shutil.which(program) else f"{program} is not on PATH ({how})"

    check.__name__ = f"check_{program}"
    return check


check_ansible_playbook = _on_path(
    "ansible-playbook", "run `make setup`, which installs Ansible into .venv"
)
check_ssh = _on_path("ssh", "install the OpenSSH client, e.g. `apt-get install openssh-client`")
check_aws_cli = _on_path("aws", f"install the AWS CLI: {AWS_CLI_INSTALL}")
check_ssm_plugin = _on_path("session-manager-plugin", f"install it: {SSM_PLUGIN_INSTALL}")


def check_playbook(ctx: Context) -> str | None:
    return None if ctx.playbook.is_file() else f"deploy playbook {ctx.playbook} is missing"


def check_inventory(ctx: Context) -> str | None:
    # The static inventory is written by provision; without it, the dynamic
    # aws_ec2 inventory still finds the host, given credentials.
    if (ctx.inventory_dir / "hosts.yml").is_file() or check_aws_credentials(ctx) is None:
        return None
    return (
        f"no inventory for the appliance: {ctx.inventory_dir}/hosts.yml is missing "
        "(run `make aws-inventory` or `make provision`) and there are no AWS credentials "
        "for the aws_ec2 dynamic inventory"
    )


# What each make target needs, in the order a person would fix them.
TARGETS: dict[str, list[Callable[[Context], str | None]]] = {
    "plan": [check_terraform, check_aws_credentials, check_public_key, check_admin_cidrs],
    "provision": [
        check_terraform,
        check_aws_credentials,
        check_public_key,
        check_admin_cidrs,
        check_ansible_playbook,
        check_ssh,
        check_playbook,
    ],
    "deploy": [check_ansible_playbook, check_playbook, check_inventory],
    "inventory": [check_terraform],
    "tunnel": [check_terraform, check_ssh],
    "tunnel-ssm": [
        check_terraform,
        check_ssh,
        check_aws_cli,
        check_ssm_plugin,
        check_aws_credentials,
    ],
    # Destroying evaluates the same configuration, so it needs the same inputs.
    "destroy": [check_terraform, check_aws_credentials, check_public_key, check_admin_cidrs],
}


def missing(target: str, ctx: Context) -> list[str]:
    """The one-line errors for everything `target` lacks; empty when ready."""
    errors: list[str] = []
    for check in TARGETS[target]:
        try:
            message = check(ctx)
        except TfvarsError as exc:
            message = str(exc)
        if message is not None and message not in errors:
            errors.append(message)
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--tf-dir", type=Path, default=Path("terraform"))
    parser.add_argument("--playbook", type=Path, default=Path("ansible/playbooks/deploy.yml"))
    parser.add_argument("--inventory-dir", type=Path, default=Path("inventories/aws"))
    args = parser.parse_args(argv)

    errors = missing(args.target, Context(args.tf_dir, args.playbook, args.inventory_dir))
    for message in errors:
        print(f"error: {message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
