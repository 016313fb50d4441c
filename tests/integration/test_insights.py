"""Insights end to end: the real producer's seeded traffic with bots, the real broker, the
real query, chDB. Unique users, the funnel and every closed session must equal the
manifest; bot detection is measured against the traffic model's labels.
"""

from __future__ import annotations

import json
import threading

import pytest

from app.processor import job
from app.producer import main as producer
from app.storage.embedded import EmbeddedStore
from app.storage.migrations import migrate
from tests.conftest import make_settings
from tests.integration.exactness import assert_outputs_equal_manifest

pytestmark = pytest.mark.integration

IDLE_TIMEOUT = 10  # seconds; the traffic below keeps a human's gaps far shorter


def test_insights_equal_the_manifest_and_bots_are_caught(spark, broker, topic, tmp_path):
    manifest = tmp_path / "manifest.json"
    settings = make_settings(
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic=topic,
        checkpoint_dir=str(tmp_path / "checkpoints"),
        trigger_interval="1s",
        max_offsets_per_trigger="2000",
        watermark_delay="5s",
        session_idle_timeout=f"{IDLE_TIMEOUT}s",
        # 400 events/s over 64 sessions: a human clicks about every 0.2 s, about 130 pages
        # a minute, and bots five times faster; the pace threshold sits between.
        bot_max_pages_per_minute="400",
        producer_rate="400",
        producer_count="16000",
        producer_seed="7",
        producer_bot_share="0.15",
        producer_concurrent_sessions="64",
        producer_manifest=str(manifest),
    )
    summary = producer.run(settings, threading.Event())
    assert (summary.sent, summary.failed) == (16000, 0)
    truth = json.loads(manifest.read_text())

    store = EmbeddedStore(str(tmp_path / "clickhouse"), "clickstream")
    try:
        migrate(store)
        pipeline = job.start(spark, settings, store, available_now=True)
        for query in pipeline.queries:
            query.awaitTermination()
        assert_outputs_equal_manifest(store, truth, IDLE_TIMEOUT)

        closed = store.query("SELECT session_id, is_bot, bot_reason FROM sessions FINAL")
        labels = {sid: s["label"] for sid, s in truth["sessions"].items()}
        bots = {sid for sid, label in labels.items() if label != "human"}
        assert len(closed) > 300 and len({labels[r["session_id"]] for r in closed}) == 3
        flagged = {r["session_id"] for r in closed if r["is_bot"]}
        actual = {r["session_id"] for r in closed} & bots
        precision = len(flagged & actual) / len(flagged)
        recall = len(flagged & actual) / len(actual)
        reasons = {r["bot_reason"] for r in closed if r["is_bot"]}
        print(
            f"bot detection over {len(closed)} closed sessions ({len(actual)} bots): "
            f"precision {precision:.3f}, recall {recall:.3f}, reasons {sorted(reasons)}"
        )
        assert precision >= 0.95 and recall >= 0.90
    finally:
        store.close()
