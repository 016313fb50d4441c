"""Findings of the hostile-input review, each reproduced through the real query.

A real broker, a real streaming query and the real ClickHouse engine; each test sends
what a careless or hostile client could send and checks that every record is counted
or rejected with its reason, and that the query keeps running.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaProducer

from app.contract import encode, format_event_time
from app.processor import job
from app.storage.embedded import EmbeddedStore
from app.storage.migrations import migrate
from tests.conftest import make_settings
from tests.integration.conftest import publish

pytestmark = pytest.mark.integration


def event(n: int, at: datetime, page: str = "/cart", **changes) -> dict:
    return {
        "event_id": str(uuid.UUID(int=n, version=4)),
        "schema_version": 1,
        "event_time": format_event_time(at),
        "user_id": f"u-{n % 7}",
        "session_id": f"s-{n % 3}",
        "page_url": page,
        "event_type": "page_view",
        "referrer": None,
        "user_agent": "hostile-input-test",
        "device": "desktop",
        "country": "DE",
        **changes,
    }


def counts(store) -> dict[tuple[datetime, str], int]:
    rows = store.query("SELECT window_start, page_url, clicks FROM page_clicks_latest")
    return {(r["window_start"], r["page_url"]): r["clicks"] for r in rows}


def reasons(store) -> dict[tuple[int, int], str]:
    rows = store.query("SELECT kafka_partition, kafka_offset, reason FROM rejected_events FINAL")
    return {(r["kafka_partition"], r["kafka_offset"]): r["reason"] for r in rows}


@pytest.fixture
def pipeline_for(spark, broker, topic, tmp_path):
    """Start the real query on a fresh topic and store; stop both afterwards."""
    started = []

    def start(**settings_values):
        settings = make_settings(
            kafka_bootstrap_servers=broker.bootstrap,
            kafka_topic=topic,
            checkpoint_dir=str(tmp_path / "checkpoints"),
            trigger_interval="1s",
            **settings_values,
        )
        store = EmbeddedStore(str(tmp_path / "clickhouse"), "clickstream")
        migrate(store)
        pipeline = job.start(spark, settings, store)
        started.append((pipeline, store))
        return pipeline, store

    yield start
    for pipeline, store in started:
        pipeline.stop()
        store.close()


def drain(pipeline) -> None:
    for query in pipeline.queries:
        query.processAllAvailable()
    assert all(q.isActive and q.exception() is None for q in pipeline.queries)


def test_one_event_from_a_fast_clock_does_not_make_on_time_events_late(pipeline_for, broker, topic):
    # Reproduces finding 1: 60 on-time events, one stamped now + 4 minutes (inside
    # MAX_FUTURE_SKEW), then 60 more on-time events. Before the fix the second 60 were
    # all dropped as late, because that one event moved the watermark past the clock.
    pipeline, store = pipeline_for(watermark_delay="2m", max_future_skew="5m")
    now = datetime.now(UTC)
    first = [event(n, now - timedelta(seconds=30 - n % 20)) for n in range(60)]
    publish(broker.bootstrap, topic, [encode(e) for e in first])
    drain(pipeline)
    publish(broker.bootstrap, topic, [encode(event(500, now + timedelta(minutes=4)))])
    drain(pipeline)
    second = [event(1000 + n, now - timedelta(seconds=25 - n % 20)) for n in range(60)]
    publish(broker.bootstrap, topic, [encode(e) for e in second])
    drain(pipeline)

    counted = sum(counts(store).values())
    assert counted == 60 + 1 + 60


def test_tombstones_concatenated_json_and_case_spellings_are_not_counted(
    pipeline_for, broker, topic
):
    pipeline, store = pipeline_for()
    at = datetime.now(UTC) - timedelta(minutes=1)
    one = event(1, at)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    try:
        sent = {
            "tombstone": producer.send(topic, key=b"u-1", value=None),
            "concatenated": producer.send(topic, value=encode(event(2, at)) + encode(event(3, at))),
            "original": producer.send(topic, value=encode(one)),
            "upper": producer.send(
                topic, value=encode({**one, "event_id": one["event_id"].upper()})
            ),
            "empty_user": producer.send(topic, value=encode(event(4, at, user_id=""))),
            "empty_page": producer.send(topic, value=encode(event(5, at, page=""))),
            "nul_page": producer.send(topic, value=encode(event(6, at, page="/cart\u0000x"))),
            "long_page": producer.send(topic, value=encode(event(7, at, page="/" + "p" * 3000))),
        }
        producer.flush()
        where = {name: future.get(timeout=30) for name, future in sent.items()}
    finally:
        producer.close()
    drain(pipeline)

    window = at.replace(second=0, microsecond=0)
    assert counts(store) == {(window, "/cart"): 1}  # the original only
    position = {name: (m.partition, m.offset) for name, m in where.items()}
    assert reasons(store) == {
        position["tombstone"]: "null_value",
        position["concatenated"]: "malformed_json",
        position["empty_user"]: "empty_user_id",
        position["empty_page"]: "empty_page_url",
        position["nul_page"]: "invalid_page_url",
        position["long_page"]: "page_url_too_long",
    }


def test_events_older_than_the_counts_ttl_are_rejected_not_lost(pipeline_for, broker, topic):
    # chDB (like a server) drops rows whose TTL has expired at insert, without an error.
    pipeline, store = pipeline_for()
    now = datetime.now(UTC)
    old = event(1, now - timedelta(days=120))
    fresh = event(2, now - timedelta(minutes=1))
    positions = publish(broker.bootstrap, topic, [encode(old), encode(fresh)])
    drain(pipeline)
    assert sum(counts(store).values()) == 1
    assert reasons(store) == {positions[0]: "expired_event_time"}


def test_a_batch_spanning_many_days_is_inserted_in_one_go(pipeline_for, broker, topic):
    # One event per day over 80 days, in one batch: more than 100 partitions per insert
    # would be refused by a server (max_partitions_per_insert_block) and loop on replay.
    pipeline, store = pipeline_for()
    now = datetime.now(UTC).replace(microsecond=0)
    events = [event(n, now - timedelta(days=n, minutes=5)) for n in range(80)]
    publish(broker.bootstrap, topic, [encode(e) for e in events])
    drain(pipeline)
    assert sum(counts(store).values()) == 80
    partitions = store.query(
        "SELECT uniqExact(partition) AS n FROM system.parts "
        "WHERE database = 'clickstream' AND table = 'page_clicks_1m' AND active"
    )[0]["n"]
    assert partitions <= 4


def test_rejects_keep_a_bounded_prefix_its_length_and_a_hash(pipeline_for, broker, topic):
    import hashlib

    pipeline, store = pipeline_for(max_event_bytes="100000", reject_sample_bytes="64")
    big = json.dumps({"junk": "x" * 50_000}).encode()
    positions = publish(broker.bootstrap, topic, [big])
    drain(pipeline)
    rows = store.query(
        "SELECT kafka_partition, kafka_offset, reason, raw_prefix, raw_bytes, raw_sha256 "
        "FROM rejected_events FINAL"
    )
    assert rows == [
        {
            "kafka_partition": positions[0][0],
            "kafka_offset": positions[0][1],
            "reason": "missing_event_id",
            "raw_prefix": big[:64].decode(),
            "raw_bytes": len(big),
            "raw_sha256": hashlib.sha256(big).hexdigest(),
        }
    ]
