"""Shared by the infrastructure tests: a real moto server on the loopback, and OpenPGP keys.

moto stands in for AWS (EC2 for the dynamic inventory, CloudWatch for app.metrics):
real boto3 clients talk HTTP to it, as they would to AWS. The keys, made with the real
gpg, stand in for Docker's and AWS's signing keys.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"moto did not start: {log.read_text()}"
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


@dataclass(frozen=True)
class GpgKey:
    """A key made by gpg in its own GNUPGHOME: run `gpg(...)` with it to export or sign."""

    home: Path
    uid: str
    fingerprint: str

    def gpg(self, *args: str, **options) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["gpg", "--batch", "--passphrase", "", "--pinentry-mode", "loopback", *args],
            env={**os.environ, "GNUPGHOME": str(self.home)},
            check=True,
            **options,
        )


def make_gpg_key(home: Path, name: str) -> GpgKey:
    """A new signing key (no passphrase, no expiry) for `name <name@example.com>`."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    home.chmod(0o700)
    uid = f"{name} <{name}@example.com>"
    key = GpgKey(home, uid, "")
    key.gpg("--quick-gen-key", uid, "default", "default", "never", capture_output=True)
    listing = key.gpg("--with-colons", "--list-keys", uid, capture_output=True, text=True).stdout
    fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
    )
    return GpgKey(home, uid, fingerprint)
