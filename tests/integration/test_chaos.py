"""Chaos: the broker crashes under the producer, the processor crashes again and again.

The real producer sends at a steady rate with the faults of test_restart.py. First the
Kafka broker itself is killed with SIGKILL, twice, while the producer sends and the
processor starts or runs, and started again on the same port and log folder: both must
ride through by themselves, and the producer (acks=all, idempotence, retries) must lose
or double nothing. Then the processor is killed with SIGKILL (its whole process group)
11 times at seeded random points: during start-up, just after a micro-batch began or a
little later, after a commit; each time it restarts from its checkpoint. Last, the
producer gets SIGTERM and writes its manifest, a run with --available-now drains the
topic, and ClickHouse must equal the manifest.

The broker is this module's own, not the shared fixture: killing that one would break
every other test of the session.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.runtime.broker import LocalBroker, ensure_topic
from app.storage.embedded import EmbeddedStore
from tests.conftest import KAFKA_BROKER_JARS, SPARK_KAFKA_JARS, free_port, make_settings
from tests.integration.exactness import assert_outputs_equal_manifest
from tests.integration.test_producer import messages_in
from tests.integration.test_restart import kill_9, start

pytestmark = pytest.mark.integration

RATE = 300  # events/s, until the test stops the producer
SEED = 20261201  # the kill schedule and the delays; the producer's traffic has its own
BROKER_KILLS = 2
# What each restarted processor's kill waits for, shuffled with SEED; with the kill of the
# first run, 11 kills in all. Start-up kills are cheap; the others wait for a batch, and
# a Spark start plus its first batch is most of what this test costs.
IDLE_TIMEOUT = 10
PROCESSOR_KILLS = ("start-up",) * 6 + ("batch start",) * 2 + ("later in a batch", "after a commit")

T_START = time.monotonic()


def note(what: str) -> None:
    print(f"{time.monotonic() - T_START:6.1f}s {what}", flush=True)


def newest(checkpoint: Path, log: str) -> dict[str, int]:
    """The newest batch id per query in <checkpoint>/<query>/<log>/<N>, log being
    'offsets' (Spark writes it when a batch starts) or 'commits' (when it has ended).

    Any subfolder counts, so this holds for one query per output (page_clicks_1m,
    rejected_events) as well as for a single query. Spark writes these files under a
    temporary dot-name and renames them, so a digits-only name is a complete file.
    """
    found: dict[str, int] = {}
    for path in checkpoint.glob(f"*/{log}/[0-9]*"):
        if path.name.isdigit():
            query = path.parent.parent.name
            found[query] = max(found.get(query, -1), int(path.name))
    return found


def committed(checkpoint: Path) -> int:
    """Batches committed so far, all queries together (ids, not files: Spark purges old
    files of its logs)."""
    return sum(n + 1 for n in newest(checkpoint, "commits").values())


def in_flight(checkpoint: Path) -> dict[str, int]:
    """Per query, the batch it has started (offsets written) but not committed."""
    done = newest(checkpoint, "commits")
    return {q: n for q, n in newest(checkpoint, "offsets").items() if n > done.get(q, -1)}


def wait_until(
    what: str, ready: Callable[[], bool], alive: dict, timeout=900.0, every=0.05
) -> None:
    """Poll `ready`; fail at once if one of the `alive` processes exits meanwhile.

    The timeout only catches a hang: on two busy cores a Spark start and its first batch
    have taken minutes, and how fast they are is not what this test is about.
    """
    deadline = time.monotonic() + timeout
    while not ready():
        for name, (process, log) in alive.items():
            assert process.poll() is None, f"{name} exited early:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f}s"
        time.sleep(every)


@dataclass
class Kill:
    kind: str  # what the kill waited for
    after: float  # seconds into the processor's run
    in_start_up: bool  # the run had neither started nor committed a batch
    cut: dict[str, int]  # per query, a batch this run started and did not commit

    def __str__(self) -> str:
        if self.in_start_up:
            where = "in start-up"
        elif self.cut:
            where = f"mid-batch {self.cut}"
        else:
            where = "between batches"
        return f"({self.kind}) {self.after:.1f}s into its run, {where}"


class Run:
    """One processor process, and where the checkpoint stood when it started."""

    def __init__(self, process: subprocess.Popen, checkpoint: Path) -> None:
        self.process, self.checkpoint = process, checkpoint
        self.started = time.monotonic()
        self.offsets = newest(checkpoint, "offsets")
        self.commits = committed(checkpoint)

    def started_a_batch(self) -> bool:
        """A batch of its own, beyond what it found (a replay writes no offsets)."""
        return any(
            n > self.offsets.get(q, -1) for q, n in newest(self.checkpoint, "offsets").items()
        )

    def crash(self, kind: str) -> Kill:
        kill_9(self.process)
        cut = {q: n for q, n in in_flight(self.checkpoint).items() if n > self.offsets.get(q, -1)}
        idle = not self.started_a_batch() and committed(self.checkpoint) == self.commits
        return Kill(kind, time.monotonic() - self.started, idle, cut)


@pytest.fixture(scope="session")
def own_broker(tmp_path_factory) -> Iterator[LocalBroker]:
    if not any(KAFKA_BROKER_JARS.glob("kafka_2.13-*.jar")):
        pytest.fail(f"Kafka broker jars missing in {KAFKA_BROKER_JARS}: run `make setup`")
    local = LocalBroker(f"127.0.0.1:{free_port()}", str(tmp_path_factory.mktemp("kafka-chaos")))
    local.start()
    yield local
    local.stop()


def test_broker_and_processor_crashes_leave_the_counts_exact(own_broker, tmp_path):
    rng = random.Random(SEED)
    broker, topic = own_broker, "clicks-chaos"
    assert ensure_topic(broker.bootstrap, topic, partitions=3) is True
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
        max_offsets_per_trigger="2000",
        producer_rate=str(RATE),
        producer_seed="2026",
        producer_manifest=str(manifest),
        fault_malformed_rate="0.01",
        fault_null_user_rate="0.01",
        fault_null_page_rate="0.01",
        fault_duplicate_rate="0.03",
        # Sessions close 10 s after their last event (plus a 5 s watermark delay), so the
        # crashes fall among sessions closing; 64 open sessions keep a human's gaps short.
        watermark_delay="5s",
        session_idle_timeout=f"{IDLE_TIMEOUT}s",
        producer_concurrent_sessions="64",
    )
    producer_log, processor_log = tmp_path / "producer.log", tmp_path / "processor.log"
    producer = start("app.producer", settings, producer_log)
    processor = start("app.processor", settings, processor_log)
    first_run = Run(processor, checkpoint)
    try:
        note("started producer and processor")
        both = {"producer": (producer, producer_log), "processor": (processor, processor_log)}

        # (a) The broker crashes while the producer sends: once while the processor is
        # still starting, once while it runs batches. Both must carry on by themselves.
        def in_topic() -> int:
            return messages_in(broker.bootstrap, topic)

        for crash in range(1, BROKER_KILLS + 1):
            if crash == 1:
                wait_until("first acks", lambda: in_topic() >= RATE, both, every=0.5)
            else:
                wait_until("a batch", lambda: committed(checkpoint) >= 1, both)
            before, batches = in_topic(), committed(checkpoint)
            broker.kill()
            outage = rng.uniform(2.0, 5.0)
            note(
                f"broker kill -9 #{crash}: {before} messages in the topic, {batches} batches "
                f"committed; down for {outage:.1f}s"
            )
            time.sleep(outage)
            broker.start()  # returns once it listens, which it does when it serves again
            note("broker back (same port, same log folder)")
            wait_until(
                "producer through after the broker restart",
                lambda floor=before: in_topic() > floor + RATE,
                both,
                every=0.5,
            )
            note(f"producer through: {in_topic()} messages in the topic")
        floor = committed(checkpoint)
        wait_until("processor through", lambda: committed(checkpoint) > floor, both)
        note(f"processor through: {committed(checkpoint)} batches committed")

        # (b) The processor crashes at random points and restarts from its checkpoint.
        kills = [first_run.crash("running, after the broker restarts")]
        note(f"processor kill -9 #1 {kills[-1]}, {committed(checkpoint)} committed")
        for number, kind in enumerate(rng.sample(PROCESSOR_KILLS, len(PROCESSOR_KILLS)), 2):
            run = Run(start("app.processor", settings, processor_log), checkpoint)
            processor = run.process
            both["processor"] = (processor, processor_log)
            if kind == "start-up":
                # Somewhere in start-up (JVM, Spark session, migrations, query start), or
                # at its first batch if start-up is over before the delay.
                delay = rng.uniform(0.5, 6.0)
                wait_until(
                    "start-up",
                    lambda r=run, d=delay: time.monotonic() - r.started >= d or r.started_a_batch(),
                    both,
                )
            elif kind == "after a commit":
                wait_until("a commit", lambda r=run: committed(checkpoint) > r.commits, both)
                time.sleep(rng.uniform(0.0, 1.0))
            else:
                # Spark writes a batch's offsets before it runs the batch: strike just after,
                # or somewhat later (reading Kafka, the state store, the insert, the commit).
                wait_until("a new batch", run.started_a_batch, both)
                time.sleep(rng.uniform(0.0, 0.3) if kind == "batch start" else rng.uniform(0.3, 3))
            kills.append(run.crash(kind))
            note(f"processor kill -9 #{number} {kills[-1]}, {committed(checkpoint)} committed")

        assert len(kills) >= 10
        assert any(k.in_start_up for k in kills), kills
        assert any(k.cut for k in kills), kills
        assert producer.poll() is None, producer_log.read_text()[-3000:]

        # (c) Stop the producer, drain what is in the topic, compare.
        producer.send_signal(signal.SIGTERM)  # flush, write the manifest, exit 0
        assert producer.wait(timeout=120) == 0, producer_log.read_text()[-3000:]
        note("producer stopped")
        # Batches as large as the default: the backlog is everything the crashed runs did
        # not get to, and each batch costs about a second however small it is.
        drain = start(
            "app.processor",
            settings,
            processor_log,
            "--available-now",
            "--max-offsets-per-trigger",
            "100000",
        )
        assert drain.wait(timeout=900) == 0, processor_log.read_text()[-3000:]
        note(f"drained: {committed(checkpoint)} batches committed")
    finally:
        for process in (producer, processor):
            if process.poll() is None:
                kill_9(process)

    truth = json.loads(manifest.read_text())
    summary = json.loads(producer_log.read_text().strip().splitlines()[-1])
    assert summary["failed"] == 0
    assert summary["sent"] == messages_in(broker.bootstrap, topic)  # nothing lost or doubled
    assert summary["sent"] >= summary["generated"] > 10_000

    store = EmbeddedStore(str(tmp_path / "clickhouse"), "clickstream")
    try:
        closed = assert_outputs_equal_manifest(store, truth, IDLE_TIMEOUT)
        assert len(closed) > 100

        # Every restart resumed its checkpoint: one query id per query across all runs.
        identities = store.query(
            "SELECT query_name, uniqExact(query_id) AS ids FROM pipeline_progress "
            "GROUP BY query_name"
        )
        assert identities and all(r["ids"] == 1 for r in identities), identities
    finally:
        store.close()
