"""Fuzz: 12,000 seeded hostile messages through the real query, each to its exact fate.

Random bytes, truncated, nested and concatenated JSON, wrong types, huge numbers, unicode,
byte-order marks, duplicate keys, boundary and far-off timestamps, time-zone offsets,
tombstones, oversized messages, duplicates in any letter case; then a second round with
events made late by the first round's watermark. Every message must be counted in its
window, removed as a duplicate, dropped as late, or rejected with its reason; the
accounting identity must hold for every batch; and the query must keep running.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from app.processor import job
from app.storage.embedded import EmbeddedStore
from app.storage.migrations import migrate
from tests.conftest import make_settings
from tests.hostile_messages import ANY_REJECT, COUNTED, DUPLICATE, LATE, HostileStream
from tests.integration.conftest import publish

pytestmark = pytest.mark.integration

FIRST_ROUND, SECOND_ROUND = 10_000, 2_000


def test_every_hostile_message_is_counted_or_rejected_and_the_query_never_stops(
    spark, broker, topic, tmp_path
):
    settings = make_settings(
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic=topic,
        checkpoint_dir=str(tmp_path / "checkpoints"),
        trigger_interval="1s",
        watermark_delay="2m",
    )
    stream = HostileStream(seed=8, now=datetime.now(UTC))
    # Round 1: in the topic before the query starts, so it is one batch, judged against
    # no watermark (nothing in it can be late).
    first = [stream.next() for _ in range(FIRST_ROUND)]
    positions = publish(broker.bootstrap, topic, [m.value for m in first])

    store = EmbeddedStore(str(tmp_path / "clickhouse"), "clickstream")
    migrate(store)
    pipeline = job.start(spark, settings, store)
    try:
        [query] = pipeline.queries
        query.processAllAvailable()
        # Round 2: the watermark is now (batch 1's clock) - 2m at most. Half of these are
        # from 10 minutes ago (late), the rest of every kind again, from the last 30 s.
        stream.move_to(datetime.now(UTC), spread_seconds=30)
        second = []
        for n in range(SECOND_ROUND):
            if n % 2:
                second.append(stream.late_event(stream.now - timedelta(minutes=10)))
            else:
                second.append(stream.next())
        positions += publish(broker.bootstrap, topic, [m.value for m in second])
        query.processAllAvailable()
        assert query.isActive and query.exception() is None

        messages = first + second
        fates = Counter(m.fate for m in messages)
        print(f"fates: {dict(sorted(fates.items()))}")
        assert min(fates.values()) >= 20 and len(fates) >= 20  # every kind was sent

        expected = Counter((m.window, m.page) for m in messages if m.fate == COUNTED)
        rows = store.query("SELECT window_start, page_url, clicks FROM page_clicks_latest")
        assert {(r["window_start"], r["page_url"]): r["clicks"] for r in rows} == dict(expected)

        rejected = {
            (r["kafka_partition"], r["kafka_offset"]): r["reason"]
            for r in store.query(
                "SELECT kafka_partition, kafka_offset, reason FROM rejected_events FINAL"
            )
        }
        not_rejected = (COUNTED, DUPLICATE, LATE)
        should_be = {
            position: m.fate
            for position, m in zip(positions, messages, strict=True)
            if m.fate not in not_rejected
        }
        assert rejected.keys() == should_be.keys()
        assert {p: r for p, r in rejected.items() if should_be[p] != ANY_REJECT} == {
            p: f for p, f in should_be.items() if f != ANY_REJECT
        }

        accounting = store.query(
            "SELECT toUInt64(sum(records_read)) AS read, toUInt64(sum(counted)) AS counted, "
            "toUInt64(sum(duplicates_removed)) AS duplicates, "
            "toUInt64(sum(dropped_late)) AS late, toUInt64(sum(rejected)) AS rejected, "
            "min(balanced) AS balanced FROM pipeline_accounting"
        )
        assert accounting == [
            {
                "read": len(messages),
                "counted": fates[COUNTED],
                "duplicates": fates[DUPLICATE],
                "late": fates[LATE],
                "rejected": len(should_be),
                "balanced": 1,
            }
        ]
    finally:
        pipeline.stop()
        store.close()
