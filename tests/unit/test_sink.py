"""The micro-batch sink against the real ClickHouse engine: a replayed batch lands once.

`ClickstreamBatchWriter.write` is what runs after Spark has computed a batch; these tests
feed it rows shaped like the batch's and check every table it writes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import Row

from app.processor.batch import EVENTS_COLUMNS
from app.processor.progress import ExecutionMetrics
from app.processor.sink import (
    CheckpointMismatch,
    ClickstreamBatchWriter,
    SinkOptions,
    check_checkpoint_matches_table,
    checkpoint_query_id,
    with_retries,
)

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
START = int(NOW.timestamp()) - 120
BATCH_TIME_MS = int(NOW.timestamp() * 1000)


def checkpoint(tmp_path, query_id="5f0c4a9e-query"):
    folder = tmp_path / query_id
    folder.mkdir()
    (folder / "metadata").write_text(json.dumps({"id": query_id}))
    return str(folder)


def writer(store, tmp_path, query_id="5f0c4a9e-query", retries=0):
    options = SinkOptions(window_seconds=60, retries=retries, backoff_seconds=0.01)
    return ClickstreamBatchWriter(
        None, store, "clickstream", checkpoint(tmp_path, query_id), options
    )


def clicks(window_start: int, page: str, n: int) -> Row:
    return Row(window_start=window_start, window_end=window_start + 60, page_url=page, clicks=n)


def reject(offset: int, reason: str = "malformed_json", raw: bytes = b"{oops") -> Row:
    return Row(
        kafka_topic="clicks",
        kafka_partition=2,
        kafka_offset=offset,
        kafka_timestamp_ms=BATCH_TIME_MS - 60_000,
        reason=reason,
        raw_prefix=raw[:16].decode(),
        raw_bytes=len(raw),
        raw_sha256=hashlib.sha256(raw).hexdigest(),
    )


def metrics(read: int, duplicates: int = 0, late: int = 0, batch_time_ms=BATCH_TIME_MS):
    return ExecutionMetrics(
        read=read,
        duplicates_removed=duplicates,
        dropped_late=late,
        state_rows=7,
        batch_time_ms=batch_time_ms,
        watermark_ms=batch_time_ms - 120_000,
    )


def latest(store) -> dict:
    rows = store.query("SELECT window_start, page_url, clicks FROM page_clicks_latest")
    return {(int(r["window_start"].timestamp()), r["page_url"]): r["clicks"] for r in rows}


def test_query_id_comes_from_the_checkpoint(tmp_path):
    assert checkpoint_query_id(checkpoint(tmp_path, "abc")) == "abc"


def test_increments_add_up_to_running_totals_and_a_replay_changes_nothing(store, tmp_path):
    sink = writer(store, tmp_path)
    sink.write(0, [clicks(START, "/", 3), clicks(START, "/cart", 1)], [], metrics(4), "r", 0)
    batch_1 = [clicks(START, "/", 2), clicks(START + 60, "/", 2)]
    sink.write(1, batch_1, [], metrics(4), "r", 0)
    # The crash case: batch 1 was written, the process died before Spark committed it,
    # and the restarted query runs batch 1 again. Its read of the totals now includes
    # its own increments, but its insert carries the same token and is dropped.
    sink.write(1, batch_1, [], metrics(4), "r2", 0)
    assert latest(store) == {(START, "/"): 5, (START, "/cart"): 1, (START + 60, "/"): 2}
    stored = store.query("SELECT count() AS n, max(query_id) AS q FROM page_clicks_1m")
    assert stored == [{"n": 4, "q": "5f0c4a9e-query"}]
    progress = store.query("SELECT batch_id, run_id FROM pipeline_progress ORDER BY batch_id")
    assert progress == [{"batch_id": 0, "run_id": "r"}, {"batch_id": 1, "run_id": "r"}]


def test_a_new_query_with_the_same_batch_ids_is_not_mistaken_for_a_replay(store, tmp_path):
    writer(store, tmp_path, "query-a").write(0, [clicks(START, "/", 3)], [], metrics(3), "r", 0)
    writer(store, tmp_path, "query-b").write(0, [clicks(START, "/help", 1)], [], metrics(1), "r", 0)
    assert latest(store) == {(START, "/"): 3, (START, "/help"): 1}


def test_rejects_keep_position_reason_and_a_bounded_sample_once(store, tmp_path):
    sink = writer(store, tmp_path)
    big = b'{"junk": "' + b"x" * 5000 + b'"}'
    rows = [reject(41), reject(42, "missing_event_id", big)]
    sink.write(3, [], rows, metrics(2), "r", 0)
    sink.write(3, [], rows, metrics(2), "r", 0)  # replayed
    stored = store.query(
        "SELECT kafka_topic, kafka_partition, kafka_offset, kafka_timestamp, reason, "
        "raw_prefix, raw_bytes, raw_sha256, batch_id FROM rejected_events ORDER BY kafka_offset"
    )
    when = NOW - timedelta(minutes=1)
    assert stored == [
        {
            "kafka_topic": "clicks",
            "kafka_partition": 2,
            "kafka_offset": 41,
            "kafka_timestamp": when,
            "reason": "malformed_json",
            "raw_prefix": "{oops",
            "raw_bytes": 5,
            "raw_sha256": hashlib.sha256(b"{oops").hexdigest(),
            "batch_id": 3,
        },
        {
            "kafka_topic": "clicks",
            "kafka_partition": 2,
            "kafka_offset": 42,
            "kafka_timestamp": when,
            "reason": "missing_event_id",
            "raw_prefix": big[:16].decode(),
            "raw_bytes": 5012,
            "raw_sha256": hashlib.sha256(big).hexdigest(),
            "batch_id": 3,
        },
    ]


def test_many_rejects_go_in_chunks_each_replay_safe(store, tmp_path, monkeypatch):
    from app.processor import sink as sink_module

    monkeypatch.setattr(sink_module, "REJECTS_PER_INSERT", 3)
    sink = writer(store, tmp_path)
    rows = [reject(n) for n in range(8)]
    assert sink.write(0, [], iter(rows), metrics(8), "r", 0).rejected == 8
    assert sink.write(0, [], iter(rows), metrics(8), "r", 0).rejected == 8  # replayed
    assert store.query("SELECT count() AS n FROM rejected_events") == [{"n": 8}]


def test_each_batch_reports_its_accounting_once(store, tmp_path):
    sink = writer(store, tmp_path)
    account = sink.write(
        5,
        [clicks(START, "/", 6), clicks(START, "/cart", 2)],
        [reject(1)],
        metrics(12, 2, 1),
        "r",
        9,
    )
    assert account.balanced
    sink.write(5, [], [], metrics(12, 2, 1), "r", 9)  # a replay with other numbers is dropped
    rows = store.query(
        "SELECT records_read, counted, duplicates_removed, dropped_late, rejected, balanced "
        "FROM pipeline_accounting"
    )
    assert rows == [
        {
            "records_read": 12,
            "counted": 8,
            "duplicates_removed": 2,
            "dropped_late": 1,
            "rejected": 1,
            "balanced": 1,
        }
    ]
    progress = store.query(
        "SELECT query_name, batch_time, kafka_lag, state_rows, watermark FROM pipeline_progress"
    )
    assert progress == [
        {
            "query_name": "clickstream",
            "batch_time": NOW,
            "kafka_lag": 9,
            "state_rows": 7,
            "watermark": NOW - timedelta(minutes=2),
        }
    ]


def test_an_unbalanced_batch_is_recorded_as_such(store, tmp_path, caplog):
    sink = writer(store, tmp_path)
    assert not sink.write(0, [clicks(START, "/", 1)], [], metrics(3), "r", 0).balanced
    assert store.query("SELECT balanced FROM pipeline_accounting") == [{"balanced": 0}]
    assert "batch 0 does not balance" in caplog.text


def test_an_empty_batch_inserts_no_counts(store, tmp_path):
    writer(store, tmp_path).write(0, [], [], metrics(0), "r", 0)
    assert store.query("SELECT count() AS n FROM page_clicks_1m") == [{"n": 0}]
    assert store.query("SELECT count() AS n FROM pipeline_progress") == [{"n": 1}]


class FailingStore:
    """The real store behind an interface that fails the first `failures` inserts."""

    def __init__(self, store, failures: int) -> None:
        self.store, self.failures, self.attempts = store, failures, 0

    def insert(self, *args, **kwargs):
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError(f"ClickHouse unreachable (attempt {self.attempts})")
        return self.store.insert(*args, **kwargs)

    def query(self, sql):
        return self.store.query(sql)


def test_a_failing_insert_is_retried_in_process_then_lands_once(store, tmp_path):
    flaky = FailingStore(store, failures=2)
    sink = writer(flaky, tmp_path, retries=3)
    sink.write(0, [clicks(START, "/", 3)], [reject(1)], metrics(4), "r", 0)
    assert latest(store) == {(START, "/"): 3}
    assert store.query("SELECT count() AS n FROM rejected_events") == [{"n": 1}]
    assert flaky.attempts == 2 + 3  # two failures, then counts, rejects, progress


def test_after_the_last_retry_the_error_stops_the_batch(store, tmp_path):
    flaky = FailingStore(store, failures=10)
    sink = writer(flaky, tmp_path, retries=2)
    with pytest.raises(ConnectionError, match="attempt 3"):
        sink.write(0, [clicks(START, "/", 3)], [], metrics(3), "r", 0)
    assert flaky.attempts == 3
    assert latest(store) == {}


def test_retry_waits_double_and_are_capped(monkeypatch):
    from app.processor import sink as sink_module

    waits: list[float] = []
    monkeypatch.setattr(sink_module.time, "sleep", waits.append)
    calls = iter([OSError("1"), OSError("2"), OSError("3"), OSError("4"), "ok"])

    def action():
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert with_retries(action, retries=4, backoff_seconds=20, what="x") == "ok"
    assert waits == [20, 40, 60, 60]


def test_a_new_checkpoint_over_old_counts_is_refused(store, tmp_path):
    fresh = str(tmp_path / "new-checkpoint" / "clickstream")
    check_checkpoint_matches_table(store, fresh)  # empty table: a new query is fine
    writer(store, tmp_path, "query-old").write(40, [clicks(START, "/", 3)], [], metrics(3), "r", 0)
    with pytest.raises(
        CheckpointMismatch,
        match=r"written by query query-old, but "
        r"CHECKPOINT_DIR has no checkpoint at .*new-checkpoint/clickstream\.",
    ):
        check_checkpoint_matches_table(store, fresh)
    check_checkpoint_matches_table(store, str(tmp_path / "query-old"))  # its own: fine


def test_a_tombstone_reaches_a_server_with_no_null_in_any_column(spark, store, tmp_path):
    """Finding 2 on the server path: the real driver refuses None in a non-Nullable column
    (the fake client does the same), so a tombstone's reject must carry no None at all."""
    from pyspark.sql import functions as F

    from app.processor import transforms
    from app.storage.server import ServerStore
    from tests.fake_clickhouse import FakeClickHouseClient, non_nullable_columns
    from tests.unit.test_transforms import checked

    judged = checked(spark, [None, b"{oops"])
    rows = (
        transforms.rejected_events(transforms.dedupe(judged, 120))
        .withColumn("kafka_timestamp_ms", F.unix_millis("kafka_timestamp"))
        .orderBy("kafka_offset")
        .collect()
    )
    client = FakeClickHouseClient(non_nullable_columns(store))
    server = ServerStore(client, "clickstream")
    account = writer(server, tmp_path).write(0, [], rows, metrics(2), "r", 0)
    assert account.rejected == 2
    [(_table, data, columns, settings)] = [i for i in client.inserts if i[0] == "rejected_events"]
    sent = [dict(zip(columns, row, strict=True)) for row in data]
    assert [(r["kafka_offset"], r["reason"], r["raw_prefix"], r["raw_bytes"]) for r in sent] == [
        (0, "null_value", "", 0),
        (1, "malformed_json", "{oops", 5),
    ]
    assert settings == {"insert_deduplication_token": "5f0c4a9e-query:0:0"}


def test_a_backfill_touching_many_windows_reads_its_totals_in_pieces(store, tmp_path, monkeypatch):
    from app.processor import sink as sink_module

    monkeypatch.setattr(sink_module, "WINDOWS_PER_QUERY", 4)
    sink = writer(store, tmp_path)
    first = [clicks(START - 60 * n, "/", 1) for n in range(10)]
    sink.write(0, first, [], metrics(10), "r", 0)
    sink.write(1, first, [], metrics(10), "r", 0)
    assert latest(store) == {(START - 60 * n, "/"): 2 for n in range(10)}


def test_events_are_written_in_slices_each_once(store, tmp_path, monkeypatch):
    import pyarrow as pa

    from app.processor import sink as sink_module

    monkeypatch.setattr(sink_module, "EVENTS_PER_INSERT", 2)
    when = NOW - timedelta(minutes=1)
    events = pa.table(
        {
            "event_id": [f"e{n}" for n in range(5)],
            "event_time": pa.array([when] * 5, pa.timestamp("us", tz="UTC")),
            "user_id": ["ann", "bob", "ann", "cid", "dan"],
            "session_id": ["s"] * 5,
            "page_url": ["/cart"] * 5,
            "event_type": [None] * 5,
            "referrer": [None] * 5,
            "user_agent": [None] * 5,
            "device": [None] * 5,
            "country": [None] * 5,
            "schema_version": pa.array([None] * 5, pa.int64()),
            "kafka_partition": pa.array([1] * 5, pa.int32()),
            "kafka_offset": pa.array(range(100, 105), pa.int64()),
            "batch_id": pa.array([6] * 5, pa.int64()),
        }
    )
    assert tuple(events.column_names) == EVENTS_COLUMNS
    sink = writer(store, tmp_path)
    increments = [clicks(int(when.timestamp()), "/cart", 5)]
    sink.write(6, increments, [], metrics(5), "r", 0, events)
    # A replay: each slice carries the same token as before, so none lands twice.
    sink.write(6, increments, [], metrics(5), "r", 0, events)
    stored = store.query("SELECT event_id, kafka_offset, batch_id FROM events ORDER BY event_id")
    assert [(r["event_id"], r["kafka_offset"], r["batch_id"]) for r in stored] == [
        (f"e{n}", 100 + n, 6) for n in range(5)
    ]
    assert store.query("SELECT unique_visitors, events FROM unique_visitors_per_minute") == [
        {"unique_visitors": 4, "events": 5}
    ]
