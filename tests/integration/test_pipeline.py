"""The real thing, end to end in one process: Kafka broker -> Spark streaming query -> chDB.

A known set of events over 4 windows and 6 pages, with every kind of bad input, is sent
in two phases: first the on-time events, then (once the query has seen them, so its
watermark has moved) events late within the watermark, late beyond it, and duplicates.
ClickHouse must then hold exactly the ground truth computed here by hand.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from app.contract import encode, parse_event_time
from app.processor import job
from app.storage.embedded import EmbeddedStore
from app.storage.migrations import migrate
from tests.conftest import make_settings
from tests.integration.conftest import publish

pytestmark = pytest.mark.integration

PAGES = ["/", "/category/books", "/products/1001", "/products/1002", "/cart", "/checkout"]
# Windows well inside the tables' TTL and not in the future.
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
WATERMARK = 120


def event(n: int, at: datetime, page: str, **changes) -> dict:
    return {
        "event_id": f"6b1f3c2e-0000-4000-8000-{n:012d}",
        "schema_version": 1,
        "event_time": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
        "user_id": f"u-{n % 17}",
        "session_id": f"s-{n % 5}",
        "page_url": page,
        "event_type": "page_view",
        "referrer": None,
        "user_agent": "integration-test",
        "device": "desktop",
        "country": "DE",
        **changes,
    }


def on_time_events() -> list[dict]:
    """Window w, page p gets (w + 2 * p) % 5 + 1 events, spread over the minute."""
    events, n = [], 0
    for w in range(4):
        for p, page in enumerate(PAGES):
            for k in range((w + 2 * p) % 5 + 1):
                n += 1
                events.append(event(n, T0 + timedelta(minutes=w, seconds=7 * k + p), page))
    return events


def bad_messages() -> list[tuple[bytes, str]]:
    at = T0 + timedelta(minutes=1, seconds=5)
    return [
        (b'{"event_id": "6b1f3c2e-0000-4000-8000-9', "malformed_json"),
        (b"<html>502 Bad Gateway</html>", "malformed_json"),
        (encode(event(9001, at, "/", user_id=None)), "missing_user_id"),
        (encode(event(9002, at, "/cart", user_id=None)), "missing_user_id"),
        (encode(event(9003, at, None)), "missing_page_url"),
        (json.dumps({**event(9004, at, "/"), "user_id": 12345}).encode(), "wrong_type_user_id"),
        (encode(event(9005, at, "/", event_time="not a time")), "invalid_event_time"),
        (encode(event(9006, at + timedelta(days=1), "/")), "future_event_time"),
        (encode(event(9007, at, "/", referrer="r" * 5000)), "oversized"),
    ]


def test_counts_are_exact_through_bad_input_late_events_and_duplicates(
    spark, broker, topic, tmp_path
):
    settings = make_settings(
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic=topic,
        checkpoint_dir=str(tmp_path / "checkpoints"),
        trigger_interval="1s",
        watermark_delay=f"{WATERMARK}s",
        window_duration="60s",
    )
    on_time = on_time_events()
    bad = bad_messages()
    duplicates_now = [encode(e) for e in on_time[:4]]  # same batch as their originals

    # Phase 1, in the topic before the query starts, so it is all in the first batch and
    # no part of it is judged against a watermark moved by another part.
    values_1 = [encode(e) for e in on_time] + duplicates_now + [v for v, _ in bad]
    positions_1 = publish(broker.bootstrap, topic, values_1)

    store = EmbeddedStore(str(tmp_path / "clickhouse"), "clickstream")
    migrate(store)
    pipeline = job.start(spark, settings, store)
    try:
        for query in pipeline.queries:
            query.processAllAvailable()
        newest = max(
            datetime.fromisoformat(e["event_time"].replace("Z", "+00:00")) for e in on_time
        )
        watermark = newest - timedelta(seconds=WATERMARK)

        # Phase 2: the watermark is now `watermark` (newest event time - 120 s).
        within = [  # late, but not older than the watermark: they count
            event(8001, watermark + timedelta(seconds=20), "/cart"),
            event(8002, watermark + timedelta(seconds=40), "/products/1001"),
            event(8003, newest - timedelta(seconds=3), "/checkout"),
        ]
        beyond = [  # older than the watermark: dropped, and reported as dropped
            event(8101, T0 + timedelta(seconds=3), "/"),
            event(8102, T0 + timedelta(seconds=9), "/products/1002"),
        ]
        duplicates_later = [encode(e) for e in on_time[-3:]]  # a later batch than originals
        publish(broker.bootstrap, topic, [encode(e) for e in within + beyond] + duplicates_later)
        for query in pipeline.queries:
            query.processAllAvailable()

        expected = Counter()
        for e in on_time + within:
            start = datetime.fromisoformat(e["event_time"].replace("Z", "+00:00"))
            expected[(start.replace(second=0, microsecond=0), e["page_url"])] += 1
        rows = store.query("SELECT window_start, page_url, clicks FROM page_clicks_latest")
        assert {(r["window_start"], r["page_url"]): r["clicks"] for r in rows} == dict(expected)
        assert len({w for w, _ in expected}) == 4 and len({p for _, p in expected}) == 6

        # The events table holds every counted event once, as sent (ids in lower case),
        # and the unique visitors per minute follow from it.
        counted_events = on_time + within
        stored = store.query("SELECT event_id, event_time, user_id, page_url FROM events")
        assert sorted(tuple(r.values()) for r in stored) == sorted(
            (e["event_id"].lower(), parse_event_time(e["event_time"]), e["user_id"], e["page_url"])
            for e in counted_events
        )
        visitors: dict[datetime, set[str]] = defaultdict(set)
        for e in counted_events:
            visitors[parse_event_time(e["event_time"]).replace(second=0, microsecond=0)].add(
                e["user_id"]
            )
        per_minute = store.query(
            "SELECT window_start, unique_visitors FROM unique_visitors_per_minute"
        )
        assert {r["window_start"]: r["unique_visitors"] for r in per_minute} == {
            minute: len(users) for minute, users in visitors.items()
        }

        rejected = store.query(
            "SELECT kafka_partition, kafka_offset, reason, raw_prefix, raw_bytes "
            "FROM rejected_events FINAL"
        )
        bad_positions = positions_1[len(values_1) - len(bad) :]
        assert sorted(
            (r["kafka_partition"], r["kafka_offset"], r["reason"], r["raw_prefix"], r["raw_bytes"])
            for r in rejected
        ) == sorted(
            (part, offset, reason, value.decode()[:1024], len(value))
            for (part, offset), (value, reason) in zip(bad_positions, bad, strict=True)
        )

        # Every record read is accounted for, batch by batch, and the late rows are
        # visible as dropped (written with the batch, so there is nothing to wait for).
        accounting = store.query(
            "SELECT toUInt64(sum(records_read)) AS read, toUInt64(sum(counted)) AS counted, "
            "toUInt64(sum(duplicates_removed)) AS duplicates, "
            "toUInt64(sum(dropped_late)) AS late, toUInt64(sum(rejected)) AS rejected, "
            "min(balanced) AS balanced FROM pipeline_accounting"
        )
        assert accounting == [
            {
                "read": len(values_1) + len(within) + len(beyond) + len(duplicates_later),
                "counted": len(on_time) + len(within),
                "duplicates": len(duplicates_now) + len(duplicates_later),
                "late": len(beyond),
                "rejected": len(bad),
                "balanced": 1,
            }
        ]

        # Bad input never stopped anything.
        assert all(q.isActive and q.exception() is None for q in pipeline.queries)
    finally:
        pipeline.stop()
        store.close()
