"""The foreachBatch sinks against the real ClickHouse engine: a replayed batch lands once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import Row

from app.processor.sink import (
    PAGE_CLICKS_COLUMNS,
    REJECTED_COLUMNS,
    CheckpointMismatch,
    ClickHouseBatchWriter,
    check_checkpoint_matches_table,
    checkpoint_query_id,
    page_clicks_row,
    rejected_row,
)

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
START = int(NOW.timestamp()) - 120


def checkpoint(tmp_path, query_id="5f0c4a9e-query"):
    (tmp_path / "cp").mkdir()
    (tmp_path / "cp" / "metadata").write_text(json.dumps({"id": query_id}))
    return str(tmp_path / "cp")


def clicks(window_start: int, page: str, n: int) -> Row:
    return Row(window_start=window_start, window_end=window_start + 60, page_url=page, clicks=n)


def latest(store) -> dict:
    rows = store.query("SELECT window_start, page_url, clicks FROM page_clicks_latest")
    return {(int(r["window_start"].timestamp()), r["page_url"]): r["clicks"] for r in rows}


def test_query_id_comes_from_the_checkpoint(tmp_path):
    assert checkpoint_query_id(checkpoint(tmp_path, "abc")) == "abc"


def test_update_mode_rows_keep_the_newest_count_and_a_replay_changes_nothing(store, tmp_path):
    writer = ClickHouseBatchWriter(
        store, "page_clicks_1m", PAGE_CLICKS_COLUMNS, page_clicks_row, checkpoint(tmp_path)
    )
    writer.write_rows([clicks(START, "/", 3), clicks(START, "/cart", 1)], batch_id=0)
    writer.write_rows([clicks(START, "/", 5), clicks(START + 60, "/", 2)], batch_id=1)
    # The crash case: batch 1 ran, the process died before Spark committed it, and the
    # restarted query runs batch 1 again with the same rows.
    writer.write_rows([clicks(START, "/", 5), clicks(START + 60, "/", 2)], batch_id=1)
    assert latest(store) == {(START, "/"): 5, (START, "/cart"): 1, (START + 60, "/"): 2}
    stored = store.query("SELECT count() AS n, max(query_id) AS q FROM page_clicks_1m")
    assert stored == [{"n": 4, "q": "5f0c4a9e-query"}]


def test_a_new_query_with_the_same_batch_ids_is_not_mistaken_for_a_replay(store, tmp_path):
    first = ClickHouseBatchWriter(
        store,
        "page_clicks_1m",
        PAGE_CLICKS_COLUMNS,
        page_clicks_row,
        checkpoint(tmp_path, "query-a"),
    )
    first.write_rows([clicks(START, "/", 3)], batch_id=0)
    (tmp_path / "b").mkdir()
    second = ClickHouseBatchWriter(
        store,
        "page_clicks_1m",
        PAGE_CLICKS_COLUMNS,
        page_clicks_row,
        checkpoint(tmp_path / "b", "query-b"),
    )
    second.write_rows([clicks(START, "/help", 1)], batch_id=0)
    assert latest(store) == {(START, "/"): 3, (START, "/help"): 1}


def test_rejects_keep_their_kafka_position_and_reason(store, tmp_path):
    writer = ClickHouseBatchWriter(
        store, "rejected_events", REJECTED_COLUMNS, rejected_row, checkpoint(tmp_path)
    )
    when = NOW - timedelta(minutes=1)
    row = Row(
        kafka_topic="clicks",
        kafka_partition=2,
        kafka_offset=41,
        kafka_timestamp_ms=int(when.timestamp() * 1000),
        reason="malformed_json",
        raw_value="{oops",
    )
    writer.write_rows([row], batch_id=3)
    writer.write_rows([row], batch_id=3)
    stored = store.query(
        "SELECT kafka_topic, kafka_partition, kafka_offset, kafka_timestamp, reason, raw_value, "
        "batch_id FROM rejected_events"
    )
    assert stored == [
        {
            "kafka_topic": "clicks",
            "kafka_partition": 2,
            "kafka_offset": 41,
            "kafka_timestamp": when,
            "reason": "malformed_json",
            "raw_value": "{oops",
            "batch_id": 3,
        }
    ]


def test_an_empty_batch_inserts_nothing(store, tmp_path):
    writer = ClickHouseBatchWriter(
        store, "page_clicks_1m", PAGE_CLICKS_COLUMNS, page_clicks_row, checkpoint(tmp_path)
    )
    assert writer.write_rows([], batch_id=0) == 0
    assert store.query("SELECT count() AS n FROM page_clicks_1m") == [{"n": 0}]


def test_a_new_checkpoint_over_old_counts_is_refused(store, tmp_path):
    old = ClickHouseBatchWriter(
        store,
        "page_clicks_1m",
        PAGE_CLICKS_COLUMNS,
        page_clicks_row,
        checkpoint(tmp_path, "query-old"),
    )
    fresh = str(tmp_path / "new-checkpoint" / "page_clicks_1m")
    check_checkpoint_matches_table(store, fresh)  # empty table: a new query is fine
    old.write_rows([clicks(START, "/", 3)], batch_id=40)
    with pytest.raises(
        CheckpointMismatch,
        match=r"written by query query-old, but "
        r"CHECKPOINT_DIR has no checkpoint at .*new-checkpoint/page_clicks_1m\.",
    ):
        check_checkpoint_matches_table(store, fresh)
    check_checkpoint_matches_table(store, str(tmp_path / "cp"))  # its own checkpoint: fine
