"""The sizing formula's bytes per event, measured on the real engines (app/sizing.py).

Kafka: the producer program sends at the appliance's default rate with its defaults
(lz4), and the topic's log segments are read from the broker's log folder. ClickHouse:
the traffic model's events go into `events` on chDB the way the sink writes them
(Arrow, batches of 2,000), merged, and the table's parts are measured. What the data
volume needs is these figures times the events, so the README's sizing holds only if
they do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from app import sizing
from app.processor.batch import EVENTS_COLUMNS
from app.producer.traffic import TrafficModel
from app.storage.embedded import EmbeddedStore
from app.storage.migrations import migrate
from tests.conftest import make_settings
from tests.integration.test_restart import REPO, child_env

pytestmark = pytest.mark.integration

RATE = 200  # the appliance's default PRODUCER_RATE: small batches, as on the appliance
TOLERANCE = 0.15


def test_kafka_bytes_per_event_on_the_brokers_disk_are_the_formulas(broker, topic):
    events = 4_000
    settings = make_settings(
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic=topic,
        producer_count=str(events),
        producer_rate=str(RATE),
    )
    run = subprocess.run(
        [sys.executable, "-m", "app.producer"],
        cwd=REPO,
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    sent = json.loads(run.stdout.strip().splitlines()[-1])["sent"]
    assert sent == events
    segments = list((broker.dir / "log").glob(f"{topic}-*/*.log"))
    assert len(segments) == 3  # one active segment per partition
    on_disk = sum(path.stat().st_size for path in segments)
    measured = on_disk / sent
    print(f"\nKafka: {sent} events, {on_disk} bytes in the segments: {measured:.1f} B/event")
    assert abs(measured - sizing.KAFKA_BYTES_PER_EVENT) <= TOLERANCE * measured


def model_events(count: int) -> pa.Table:
    """`count` events of the traffic model at 200/s up to now, as the sink's Arrow table."""
    model = TrafficModel(seed=7, concurrent_sessions=2_000)
    start = datetime.now(UTC) - timedelta(seconds=count / RATE)
    columns: dict[str, list] = {name: [] for name in EVENTS_COLUMNS}
    for k in range(count):
        event = model.next_event(start + timedelta(seconds=k / RATE))
        for name in EVENTS_COLUMNS[:-3]:
            columns[name].append(event.get(name))
        columns["kafka_partition"].append(k % 3)
        columns["kafka_offset"].append(k // 3)
        columns["batch_id"].append(k // 2_000)
    columns["event_time"] = [
        datetime.fromisoformat(t.replace("Z", "+00:00")) for t in columns["event_time"]
    ]
    types = {
        "event_time": pa.timestamp("us", tz="UTC"),
        "schema_version": pa.int64(),
        "kafka_partition": pa.int32(),
        "kafka_offset": pa.int64(),
        "batch_id": pa.int64(),
    }
    return pa.table({name: pa.array(v, types.get(name)) for name, v in columns.items()})


def test_clickhouse_bytes_per_event_in_events_are_the_formulas(tmp_path):
    count = 400_000
    table = model_events(count)
    store = EmbeddedStore(str(tmp_path / "clickhouse"), "clickstream")
    try:
        list(migrate(store))
        for start in range(0, count, 2_000):
            store.insert_arrow("events", table.slice(start, 2_000))
        store.command("OPTIMIZE TABLE events FINAL")
        [parts] = store.query(
            "SELECT sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts "
            "WHERE active AND database = currentDatabase() AND table = 'events'"
        )
    finally:
        store.close()
    assert int(parts["rows"]) == count
    measured = int(parts["bytes"]) / count
    print(f"\nClickHouse events: {count} events, {parts['bytes']} bytes: {measured:.1f} B/event")
    assert abs(measured - sizing.CLICKHOUSE_EVENTS_BYTES_PER_EVENT) <= TOLERANCE * measured
