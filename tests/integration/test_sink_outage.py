"""ClickHouse failing for a while, behind the store interface: the counts stay exact.

The real producer program sends a seeded stream with faults (and writes its manifest);
the real query writes through a store that refuses inserts on demand. A short outage is
ridden out by the sink's in-process retries; a long one stops the query, which is then
started again from its checkpoint, as systemd would. ClickHouse must equal the manifest.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from pyspark.errors import StreamingQueryException

from app.processor import job
from app.storage.embedded import EmbeddedStore
from app.storage.migrations import migrate
from tests.conftest import REPO, make_settings
from tests.integration.exactness import assert_outputs_equal_manifest
from tests.integration.test_restart import child_env

pytestmark = pytest.mark.integration


class FlakyStore:
    """The real engine, with an outage switch and a count of refused inserts."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self.database = store.database
        self.down = threading.Event()
        self.fail_next = 0  # refuse this many inserts, then recover by itself
        self.refused = 0
        self.inserted = 0

    def _admit(self, table: str) -> None:
        if self.down.is_set() or self.fail_next > 0:
            self.fail_next = max(self.fail_next - 1, 0)
            self.refused += 1
            raise ConnectionError(f"ClickHouse unreachable (insert into {table} refused)")
        self.inserted += 1

    def insert(self, table, columns, rows, dedup_token=None):
        self._admit(table)
        return self.store.insert(table, columns, rows, dedup_token=dedup_token)

    def insert_arrow(self, table, data, dedup_token=None):
        self._admit(table)
        return self.store.insert_arrow(table, data, dedup_token=dedup_token)

    def query(self, sql):
        return self.store.query(sql)

    def command(self, sql):
        return self.store.command(sql)

    def close(self):
        self.store.close()


def produce(settings, tmp_path) -> dict:
    """Run the producer program to the end; its manifest is the ground truth."""
    done = subprocess.run(
        [sys.executable, "-m", "app.producer"],
        cwd=REPO,
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["failed"] == 0
    return json.loads((tmp_path / "manifest.json").read_text())


def test_short_and_long_clickhouse_outages_lose_and_double_nothing(spark, broker, topic, tmp_path):
    settings = make_settings(
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic=topic,
        checkpoint_dir=str(tmp_path / "checkpoints"),
        trigger_interval="1s",
        max_offsets_per_trigger="600",
        sink_retries="3",
        sink_retry_backoff="100ms",
        producer_rate="2000",
        producer_count="4000",
        producer_seed="77",
        producer_manifest=str(tmp_path / "manifest.json"),
        fault_malformed_rate="0.02",
        fault_null_user_rate="0.01",
        fault_duplicate_rate="0.05",
    )
    truth = produce(settings, tmp_path)

    flaky = FlakyStore(EmbeddedStore(str(tmp_path / "clickhouse"), "clickstream"))
    migrate(flaky)
    try:
        # A short outage in the first batch: three refusals, inside SINK_RETRIES=3.
        flaky.fail_next = 3
        pipeline = job.start(spark, settings, flaky)
        [query] = pipeline.queries
        while flaky.inserted < 6:  # a few batches written, then the long outage
            assert query.isActive, query.exception()
            query.awaitTermination(0.2)
        assert flaky.refused == 3 and query.isActive

        flaky.down.set()
        # The retries run out: the query stops with the error (awaitTermination raises it).
        with pytest.raises(StreamingQueryException, match="ClickHouse unreachable"):
            query.awaitTermination(120)
        assert flaky.refused == 3 + 4  # one attempt and three retries
        pipeline.stop()

        flaky.down.clear()  # ClickHouse is back; start again, as systemd would
        pipeline = job.start(spark, settings, flaky)
        [query] = pipeline.queries
        query.processAllAvailable()
        assert query.isActive and query.exception() is None
        pipeline.stop()

        # Every output equals the manifest (events and unique visitors included).
        assert_outputs_equal_manifest(flaky, truth)
        accounting = flaky.query(
            "SELECT toUInt64(sum(records_read)) AS read, toUInt64(sum(counted)) AS counted, "
            "min(balanced) AS balanced, toUInt64(count()) - uniqExact(batch_id) AS twice "
            "FROM pipeline_accounting"
        )
        sent = truth["counted_events"] + truth["duplicates_sent"] + sum(truth["rejected"].values())
        assert accounting == [
            {"read": sent, "counted": truth["counted_events"], "balanced": 1, "twice": 0}
        ]
    finally:
        flaky.close()
