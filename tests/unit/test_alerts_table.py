"""The processor's alert judgement on the real ClickHouse engine: a /cart outage by hand.

The sink judges after each batch from `events` (app/alerts/judge.py), writes `alerts` and
publishes the changes and a heartbeat. The topic here is a recorder standing in for Kafka
(the integration tests use the real broker).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from app.alerts import judge
from app.alerts import rules as R
from app.processor.progress import ExecutionMetrics
from app.processor.sink import ClickstreamBatchWriter, SinkOptions
from tests.conftest import make_settings
from tests.events_table import arrow_events

# A whole second, an hour ago (inside every TTL: page_events_1s keeps a day), as the batch
# clock of the first batch.
T = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
T_MS = int(T.timestamp() * 1000)
RULES = R.rules_from(make_settings(alert_pages="/cart"))


class Recorder:
    """Records what the sink publishes, as the alerts topic would carry it."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str]] = []
        self.heartbeats: list[int] = []

    def publish(self, alerts, heartbeat) -> None:
        self.changes += [(a.alert_id, a.state) for a in alerts]
        self.heartbeats.append(heartbeat["batch_id"])


def sink(store, tmp_path, recorder):
    folder = tmp_path / "checkpoint"
    folder.mkdir(exist_ok=True)
    (folder / "metadata").write_text(json.dumps({"id": "q-alerts"}))
    options = SinkOptions(window_seconds=60, retries=0, backoff_seconds=0.01, alert_rules=RULES)
    return ClickstreamBatchWriter(None, store, "clickstream", str(folder), options, recorder)


def events(page: str, start_s: float, end_s: float, per_second: int, batch: int):
    """Events of one page every 1/per_second s in [T + start_s, T + end_s)."""
    count = round((end_s - start_s) * per_second)
    times = [T + timedelta(seconds=start_s + k / per_second) for k in range(count)]
    rows = [(f"{page}-{batch}-{k}", t, f"u{k % 50}") for k, t in enumerate(times)]
    return arrow_events(rows, batch_id=batch, page_url=page)


def write(writer, batch_id: int, clock_offset_s: int, tables) -> None:
    batch_ms = T_MS + clock_offset_s * 1000
    metrics = ExecutionMetrics(0, 0, 0, 0, batch_time_ms=batch_ms, watermark_ms=0)
    # One insert per batch, as the sink does (its token is the batch's).
    writer._write_events(pa.concat_tables(tables), batch_id)
    writer.write(batch_id, [], [], metrics, "run", 0)


def test_a_cart_outage_fires_once_and_resolves_once(store, tmp_path):
    recorder = Recorder()
    writer = sink(store, tmp_path, recorder)
    # Batch 1 at T: "/" each second up to T-1 (the data clock), /cart 3 a second from
    # T-313 to T-3. Recent window [T-13, T-3): 30 /cart events; baseline [T-313, T-13):
    # 900, so 30 expected. No alert.
    write(writer, 1, 0, [events("/", -320, 0, 1, 1), events("/cart", -313, -3, 3, 1)])
    assert recorder.changes == []
    # Batch 2 at T+10: "/" goes on to T+9; /cart is silent from T-3. Recent [T-3, T+7):
    # 0 of 30 expected (baseline [T-303, T-3): 900 events). It fires, with first_seen T+10.
    write(writer, 2, 10, [events("/", 0, 10, 1, 2)])
    opened = "page_drop:/cart:" + (T + timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert recorder.changes == [(opened, "firing")]
    assert [
        (r["alert_id"], r["value"], r["baseline"])
        for r in store.query("SELECT alert_id, value, baseline FROM open_alerts")
    ] == [(opened, 0.0, 30.0)]
    # A replay of batch 2 writes nothing new and publishes the same change again.
    write(writer, 2, 10, [events("/", 0, 10, 1, 2)])
    assert store.query("SELECT count() AS n FROM alerts") == [{"n": 1}]
    # Batch 3 at T+20: /cart is back, 3 a second from T+7. Recent [T+7, T+17): 30, above
    # 60% of the frozen 30 (the live baseline would now say 21). It resolves.
    write(writer, 3, 20, [events("/", 10, 20, 1, 3), events("/cart", 7, 20, 3, 3)])
    assert recorder.changes == [(opened, "firing"), (opened, "firing"), (opened, "resolved")]
    assert recorder.heartbeats == [1, 2, 2, 3]
    latest = store.query(
        "SELECT alert_id, state, value, baseline, toUnixTimestamp64Milli(first_seen) AS f, "
        "toUnixTimestamp64Milli(resolved_at) AS r, duration_seconds FROM alerts_latest"
    )
    assert latest == [
        {
            "alert_id": opened,
            "state": "resolved",
            "value": 30.0,
            "baseline": 30.0,
            "f": T_MS + 10_000,
            "r": T_MS + 20_000,
            "duration_seconds": 10.0,
        }
    ]
    assert store.query("SELECT count() AS n FROM open_alerts") == [{"n": 0}]


def test_open_alerts_are_read_as_the_earlier_batches_left_them(store, tmp_path):
    writer = sink(store, tmp_path, Recorder())
    write(writer, 1, 0, [events("/", -320, 0, 1, 1), events("/cart", -313, -3, 3, 1)])
    write(writer, 2, 10, [events("/", 0, 10, 1, 2)])
    # Batch 2's own row is not "before batch 2": a replay of it starts from no open alert.
    assert judge.open_alerts(store, "q-alerts", 2) == {}
    assert list(judge.open_alerts(store, "q-alerts", 3)) == [("page_drop", "/cart")]
    assert judge.open_alerts(store, "another-query", 3) == {}


def test_rejects_flood_counts_the_minute_of_batches(store, tmp_path):
    recorder = Recorder()
    writer = sink(store, tmp_path, recorder)
    reject_rows = []
    metrics = ExecutionMetrics(200, 0, 0, 0, batch_time_ms=T_MS, watermark_ms=0)
    from pyspark.sql import Row

    for offset in range(30):
        reject_rows.append(
            Row(
                kafka_topic="t",
                kafka_partition=0,
                kafka_offset=offset,
                kafka_timestamp_ms=T_MS,
                reason="malformed_json",
                raw_prefix="{",
                raw_bytes=1,
                raw_sha256="0" * 64,
            )
        )
    # 200 read, 30 rejected: 15% of the minute, above 10%.
    writer.write(1, [], reject_rows, metrics, "run", 0)
    assert recorder.changes == [
        ("rejects_flood:all:" + T.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "firing")
    ]
    # 40 s later, 200 more records and none rejected: 30 of 400 is 7.5%: resolved.
    later = ExecutionMetrics(200, 0, 0, 0, batch_time_ms=T_MS + 40_000, watermark_ms=0)
    writer.write(2, [], [], later, "run", 0)
    assert recorder.changes[-1][1] == "resolved"
    assert store.query("SELECT value FROM alerts_latest") == [{"value": 0.075}]


class NotifierChanges:
    """Stands in for the alerts topic's notifier messages (NotifierAlerts): take() gives
    what arrived since the last commit(), as a consumer restarted from its commit would."""

    def __init__(self) -> None:
        self.pending: list[R.Alert] = []
        self.uncommitted: list[R.Alert] = []
        self.commits = 0

    def take(self) -> list[R.Alert]:
        taken, self.pending = self.pending, []
        self.uncommitted += taken
        return taken

    def commit(self) -> None:
        self.uncommitted, self.commits = [], self.commits + 1

    def restart(self) -> None:
        self.pending, self.uncommitted = self.uncommitted + self.pending, []


def test_the_notifiers_stall_reaches_the_table_once_each_change(store, tmp_path):
    stall_ms = T_MS + 5_000
    firing = R.Alert(
        f"pipeline_stalled:clickstream.events:{T.isoformat()[:19]}.000Z",
        R.PIPELINE_STALLED,
        "clickstream.events",
        R.FIRING,
        60.0,
        0.0,
        60.0,
        stall_ms,
        stall_ms,
        None,
    )
    resolved = R.Alert(
        firing.alert_id,
        R.PIPELINE_STALLED,
        "clickstream.events",
        R.RESOLVED,
        75.0,
        0.0,
        60.0,
        stall_ms,
        stall_ms + 15_000,
        stall_ms + 15_000,
    )
    changes = NotifierChanges()
    writer = sink(store, tmp_path, Recorder())
    writer.notifier_alerts = changes
    changes.pending = [firing, resolved]
    write(writer, 1, 0, [events("/", -10, 0, 1, 1)])
    assert changes.commits == 1
    # Published again (the notifier crashed after publishing), and this time the
    # processor crashes after its insert, before its commit: read a third time after it.
    changes.pending = [firing, resolved]
    judge.record_notifier_alerts(store, changes.take())
    changes.restart()
    assert [a.state for a in changes.pending] == ["firing", "resolved"]
    write(writer, 2, 1, [events("/", 0, 1, 1, 2)])
    rows = store.query(
        "SELECT rule, subject, state, value, batch_id, query_id, "
        "toInt64(toUnixTimestamp64Milli(first_seen)) AS f FROM alerts "
        "WHERE rule = 'pipeline_stalled' ORDER BY last_seen"
    )
    assert rows == [
        {
            "rule": "pipeline_stalled",
            "subject": "clickstream.events",
            "state": state,
            "value": value,
            "batch_id": -1,
            "query_id": "notifier",
            "f": stall_ms,
        }
        for state, value in (("firing", 60.0), ("resolved", 75.0))
    ]
    assert store.query(
        "SELECT state, duration_seconds FROM alerts_latest WHERE rule = 'pipeline_stalled'"
    ) == [{"state": "resolved", "duration_seconds": 15.0}]
    # The processor's own judgement never takes the notifier's alert for one of its own.
    assert judge.open_alerts(store, "q-alerts", 3) == {}


def test_only_the_notifiers_well_formed_changes_are_taken_from_the_topic():
    from app.alerts.rules import Alert
    from app.alerts.topic import ALERT, NOTIFIER, PROCESSOR, _notifier_alert, alert_json

    stall = Alert(
        "pipeline_stalled:t:2025-12-02T08:00:00.000Z",
        R.PIPELINE_STALLED,
        "t",
        R.FIRING,
        60.0,
        0.0,
        60.0,
        T_MS,
        T_MS,
        None,
    )
    mine = {"kind": ALERT, "origin": NOTIFIER, **alert_json(stall)}
    assert _notifier_alert(json.dumps(mine).encode()) == stall
    others = [
        json.dumps({**mine, "origin": PROCESSOR}).encode(),  # the processor's own change
        json.dumps({"kind": "heartbeat", "query_id": "q"}).encode(),
        b"\xff\xfe not json",
        b"[1, 2]",
        b"42",
        None,  # a tombstone
        json.dumps({"kind": ALERT, "origin": NOTIFIER, "alert_id": "x"}).encode(),  # fields
        json.dumps({**mine, "value": "many"}).encode(),  # a value that is no number
    ]
    assert [_notifier_alert(value) for value in others] == [None] * len(others)
