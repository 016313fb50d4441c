"""Open the SSH tunnel whose command Terraform wrote into an output, without a shell.

    terraform -chdir=terraform output -json | python scripts/aws/tunnel.py tunnel_command

`make tunnel` and `make tunnel-ssm` run it. The command is split like a shell would
(quotes, for the SSM ProxyCommand) and run directly: nothing Terraform printed is ever
evaluated by a shell. Before any `make provision` Terraform has no outputs (and
`terraform output -raw` prints a warning box on stdout with exit 0): that is one
error line here, not a dozen "command not found".
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

BANNER = (
    "Metabase http://localhost:3000 | Spark master http://localhost:8080 | "
    "Spark driver http://localhost:4040 (Ctrl-C closes)"
)


class TunnelError(Exception):
    pass


def tunnel_argv(outputs_json: str, name: str, tf_dir: str) -> list[str]:
    """The ssh argv of output `name`, or TunnelError saying why there is none."""
    try:
        outputs = json.loads(outputs_json) if outputs_json.strip() else {}
    except json.JSONDecodeError:
        outputs = {}
    value = outputs.get(name, {}).get("value") if isinstance(outputs, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise TunnelError(f"no provisioned appliance in {tf_dir} (run `make provision` first)")
    argv = shlex.split(value)
    # One ssh that only forwards ports (-N): no remote command, nothing chained locally.
    if argv[0] != "ssh" or "-N" not in argv or any(t in (";", "&&", "||", "|") for t in argv):
        raise TunnelError(f"the Terraform output {name} is not one ssh command: {value!r}")
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="the Terraform output holding the ssh command")
    parser.add_argument("--tf-dir", default="terraform", help="for the error message")
    args = parser.parse_args(argv)
    try:
        command = tunnel_argv(sys.stdin.read(), args.output, args.tf_dir)
    except TunnelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(BANNER)
    print("+ " + shlex.join(command), flush=True)
    os.execvp(command[0], command)
    return 0  # not reached: exec replaces this process


if __name__ == "__main__":
    raise SystemExit(main())
