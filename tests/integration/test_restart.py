"""Crash the processor with kill -9, twice, mid-stream: the counts stay exact.

The real producer (traffic model with malformed, null and duplicate events) feeds the
real broker without a count limit; the processor runs as its own process and is killed
with SIGKILL (its Python driver and its Spark JVM, the whole process group) while events
flow, then restarted from its checkpoint. After the second crash the producer gets
SIGTERM, flushes and writes its manifest; a last run with --available-now drains the
topic and exits. ClickHouse must then equal the manifest: no loss, no double count.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app import settings as settings_module
from app.storage.embedded import EmbeddedStore
from tests.conftest import REPO, SPARK_KAFKA_JARS, make_settings
from tests.integration.exactness import assert_outputs_equal_manifest

pytestmark = pytest.mark.integration

RATE = 200  # events/s, until the test stops the producer
# Sessions close 10 s (plus the 5 s watermark delay) after their last event, so many
# close during the run; 64 open sessions at 200 events/s keep a human's gaps near 0.4 s.
IDLE_TIMEOUT = 10


def child_env(settings) -> dict[str, str]:
    """Only what the child needs, so no setting leaks in from the developer's shell."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "JAVA_HOME", "LANG")}
    return {**keep, **settings_module.to_environ(settings)}


def start(module: str, settings, log: Path, *args: str) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            env=child_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def commits(checkpoint: Path) -> int:
    folder = checkpoint / "clickstream" / "commits"
    return len([p for p in folder.glob("[0-9]*")]) if folder.exists() else 0


def wait_for_commits(checkpoint: Path, at_least: int, process, log: Path, timeout=180.0):
    deadline = time.monotonic() + timeout
    while commits(checkpoint) < at_least:
        assert process.poll() is None, f"processor exited early:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no batch {at_least} committed in {timeout}s"
        time.sleep(0.2)


T_START = time.monotonic()


def note(what: str) -> None:
    print(f"{time.monotonic() - T_START:6.1f}s {what}", flush=True)


def kill_9(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)  # the Python driver and its Spark JVM
    process.wait()


def test_kill_9_twice_then_restart_counts_stay_exact(broker, topic, tmp_path):
    checkpoint = tmp_path / "checkpoints"
    manifest = tmp_path / "manifest.json"
    settings = make_settings(
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic=topic,
        clickhouse_url=f"chdb://{tmp_path}/clickhouse",
        checkpoint_dir=str(checkpoint),
        spark_jars=str(SPARK_KAFKA_JARS),
        spark_master="local[2]",
        trigger_interval="1s",
        max_offsets_per_trigger="1500",
        producer_rate=str(RATE),
        producer_seed="2026",
        producer_manifest=str(manifest),
        fault_malformed_rate="0.01",
        fault_null_user_rate="0.01",
        fault_null_page_rate="0.01",
        fault_duplicate_rate="0.03",
        watermark_delay="5s",
        session_idle_timeout=f"{IDLE_TIMEOUT}s",
        producer_concurrent_sessions="64",
    )
    producer_log, processor_log = tmp_path / "producer.log", tmp_path / "processor.log"
    producer = start("app.producer", settings, producer_log)
    processor = start("app.processor", settings, processor_log)
    try:
        note("started producer and processor")
        wait_for_commits(checkpoint, 3, processor, processor_log)
        note(f"kill -9 after {commits(checkpoint)} commits")
        kill_9(processor)
        first_kill_at = commits(checkpoint)

        processor = start("app.processor", settings, processor_log)
        note("restarted")
        wait_for_commits(checkpoint, first_kill_at + 2, processor, processor_log)
        note(f"kill -9 after {commits(checkpoint)} commits")
        assert producer.poll() is None, producer_log.read_text()[-3000:]
        kill_9(processor)

        producer.send_signal(signal.SIGTERM)  # flush, write the manifest, exit 0
        assert producer.wait(timeout=120) == 0, producer_log.read_text()[-3000:]
        note("producer stopped")
        drain = start("app.processor", settings, processor_log, "--available-now")
        assert drain.wait(timeout=300) == 0, processor_log.read_text()[-3000:]
        note("drained")
    finally:
        for process in (producer, processor):
            if process.poll() is None:
                kill_9(process)

    truth = json.loads(manifest.read_text())
    summary = json.loads(producer_log.read_text().strip().splitlines()[-1])
    assert summary["failed"] == 0
    assert summary["sent"] >= summary["generated"] > 3000

    store = EmbeddedStore(str(tmp_path / "clickhouse"), "clickstream")
    try:
        # Sessions and funnel included: no session row or funnel count lost or doubled.
        closed = assert_outputs_equal_manifest(store, truth, IDLE_TIMEOUT)
        assert len(closed) > 100

        # Three runs (start, restart, drain) of one query: the checkpoint kept its identity.
        runs = store.query(
            "SELECT uniqExact(query_id) AS queries, uniqExact(run_id) AS runs "
            "FROM pipeline_progress WHERE query_name = 'clickstream'"
        )
        assert runs == [{"queries": 1, "runs": 3}]

        # Every record in the topic was read in exactly one batch and went to exactly one
        # place, though two batches were cut short by kill -9 and run again.
        accounting = store.query(
            "SELECT toUInt64(sum(records_read)) AS read, toUInt64(sum(counted)) AS counted, "
            "toUInt64(sum(rejected)) AS rejected, min(balanced) AS balanced, "
            "toUInt64(count()) - uniqExact(batch_id) AS reported_twice FROM pipeline_accounting"
        )
        assert accounting == [
            {
                "read": summary["sent"],
                "counted": truth["counted_events"],
                "rejected": sum(truth["rejected"].values()),
                "balanced": 1,
                "reported_twice": 0,
            }
        ]
    finally:
        store.close()
