"""`make demo DURATION=60`: the user's first command, run as the user runs it.

It must exit 0 with counts in page_clicks_1m and leave no process behind. Its data goes
to a temporary DATA_DIR and its broker to a free port, so a demo a developer has running
is not disturbed. A second run is stopped the way a person stops it, with Ctrl-C (SIGINT
to the terminal's process group): it must stop everything just as cleanly, and reuse
what the first run installed and downloaded.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from app.storage.embedded import EmbeddedStore
from tests.conftest import REPO, free_port

pytestmark = pytest.mark.integration


def processes_with(marker: str) -> list[str]:
    """Command lines of live processes whose environment holds `marker`.

    Everything the demo starts (make, the driver, its Spark JVM, the producer, the
    broker) inherits DATA_DIR, so this finds any of them left running.
    """
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes().split(b"\0"):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def demo_env(data: Path, port: int) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "JAVA_HOME", "LANG")},
        "DATA_DIR": str(data),
        "CLICKHOUSE_URL": f"chdb://{data}/clickhouse",
        "CHECKPOINT_DIR": f"{data}/checkpoints",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
    }


def run_demo(data: Path, port: int, seconds: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "demo", f"DURATION={seconds}"],
        cwd=REPO,
        env=demo_env(data, port),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_make_demo_runs_for_its_duration_and_leaves_nothing_behind(tmp_path):
    data, port = tmp_path / "data", free_port()
    first = run_demo(data, port, 60)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "stopped. Data kept in" in first.stdout
    assert processes_with(f"DATA_DIR={data}") == []

    store = EmbeddedStore(str(data / "clickhouse"), "clickstream")
    try:
        counted = store.query(
            "SELECT count() AS rows, toUInt64(sum(clicks)) AS clicks FROM page_clicks_latest"
        )[0]
        # 60 s at the default 200 events/s, less start-up: thousands, not a handful.
        assert counted["rows"] > 50 and counted["clicks"] > 3000
        reasons = {r["reason"] for r in store.query("SELECT DISTINCT reason FROM rejected_events")}
        assert reasons == {"malformed_json", "missing_user_id", "missing_page_url"}
        batches = store.query("SELECT count() AS n FROM pipeline_progress")[0]["n"]
        assert batches > 5
    finally:
        store.close()

    # Again, until Ctrl-C: the broker's log, the checkpoints and the tables carry on, and
    # make installs and downloads nothing the first run already has.
    log = tmp_path / "second.out"
    with open(log, "w") as out:
        demo = subprocess.Popen(
            ["make", "--no-print-directory", "demo"],
            cwd=REPO,
            env=demo_env(data, port),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        # The view reports batches once the job runs; wait for a few before pressing Ctrl-C.
        while not re.search(r"batches\s+(\d{2,}|[3-9])\b", log.read_text()):
            assert demo.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        demo.wait(timeout=120)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    output = log.read_text()
    assert "stopping: producer, notifier, Spark job, broker" in output
    assert "stopped. Data kept in" in output
    assert "pip install" not in output and "mvn " not in output
    assert processes_with(f"DATA_DIR={data}") == []
