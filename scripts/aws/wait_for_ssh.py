"""Wait until a host's SSH server answers, so Ansible's first connection works.

    python scripts/aws/wait_for_ssh.py 203.0.113.10 --timeout 600

A fresh EC2 instance takes a minute or two to boot. "Answers" means the
server sent its SSH banner, not merely that the port accepted a connection.
On Debian's cloud images cloud-init installs the login key before sshd starts,
so a banner means the key is in place too. Exit 0 when it answers, 1 on timeout.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time


def ssh_banner(host: str, port: int, timeout: float) -> str | None:
    """The server's identification line (e.g. "SSH-2.0-OpenSSH_9.2p1"), or None."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            line = conn.makefile("rb").readline(256)
    except OSError:
        return None
    text = line.decode("ascii", errors="replace").strip()
    return text if text.startswith("SSH-") else None


def wait_for_ssh(
    host: str, port: int = 22, timeout: float = 600, interval: float = 5
) -> str | None:
    """Poll until the server answers or `timeout` seconds pass; the banner or None."""
    deadline = time.monotonic() + timeout
    while True:
        banner = ssh_banner(host, port, timeout=min(10.0, max(1.0, timeout)))
        if banner is not None:
            return banner
        if time.monotonic() + interval > deadline:
            return None
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("--port", type=int, default=22)
    parser.add_argument("--timeout", type=float, default=600, help="seconds (default 600)")
    parser.add_argument("--interval", type=float, default=5, help="seconds between tries")
    args = parser.parse_args(argv)

    if not args.host:
        print("error: no host address (has `make provision` finished the apply?)", file=sys.stderr)
        return 1
    print(f"waiting for SSH on {args.host}:{args.port} (up to {args.timeout:.0f} s)", flush=True)
    banner = wait_for_ssh(args.host, args.port, args.timeout, args.interval)
    if banner is None:
        print(
            f"error: SSH on {args.host}:{args.port} did not answer within {args.timeout:.0f} s "
            "(is your address in admin_cidrs? see the EC2 console's system log)",
            file=sys.stderr,
        )
        return 1
    print(f"SSH answers: {banner}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
