"""The micro-batch sink: one batch, read once, fanned out to every table, idempotently.

Exactly-once comes from three things together. Spark replays a batch after a crash with
the same batch id and the same offsets (its write-ahead log in the checkpoint); each
insert carries the token "<query id>:<batch id>", where the query id is the one stored in
the checkpoint and so survives restarts; and ClickHouse drops an insert whose token it has
seen (non_replicated_deduplication_window on the tables). A replayed batch therefore
lands once in each table.

page_clicks_1m holds running totals, versioned by batch id: the batch's increments are
added to the newest totals in the table. A replay whose first attempt landed reads totals
that already hold its increments, but its insert carries the same token and is dropped,
so the totals are right whichever way a crash fell.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from kafka.errors import KafkaError
from pyspark.sql import DataFrame, Row, SparkSession

from app.alerts import judge
from app.alerts import topic as alert_topic
from app.alerts.rules import Alert, AlertRules, advance
from app.processor import sessions, transforms
from app.processor.batch import (
    Increment,
    event_rows,
    reject_rows,
    split,
    window_increments,
)
from app.processor.progress import (
    PROGRESS_COLUMNS,
    BatchAccount,
    ExecutionMetrics,
    execution_metrics,
    kafka_lag,
)
from app.storage import ClickHouseStore
from app.storage.base import quote_string

log = logging.getLogger(__name__)

PAGE_CLICKS_COLUMNS = ("window_start", "window_end", "page_url", "clicks", "batch_id", "query_id")
REJECTED_COLUMNS = (
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "reason",
    "raw_prefix",
    "raw_bytes",
    "raw_sha256",
    "batch_id",
)
# Events are inserted in slices of this many rows, each with its own token. A token names
# a slice by its number, so a batch replayed by code with another size here would cut
# other slices under the same tokens: change it only with no batch left to replay.
EVENTS_PER_INSERT = 100_000
# Rejects are inserted in chunks of this many rows, so a flood of them never sits in the
# driver's memory at once; each chunk has its own token (<query>:<batch>:<chunk>).
REJECTS_PER_INSERT = 10_000
MAX_BACKOFF_SECONDS = 60.0
WINDOWS_PER_QUERY = 500

T = TypeVar("T")


def checkpoint_query_id(checkpoint: str) -> str:
    """The query id Spark keeps in <checkpoint>/metadata: stable across restarts."""
    return json.loads(Path(checkpoint, "metadata").read_text())["id"]


class CheckpointMismatch(RuntimeError):
    """page_clicks_1m holds counts of another query than the checkpoint would resume."""


def check_checkpoint_matches_table(store: ClickHouseStore, checkpoint: str) -> None:
    """Refuse to start a new query over counts an earlier query wrote.

    Versions are batch ids, and a query started without its checkpoint numbers its batches
    from 0 again: its fresh counts would lose to the old rows' higher versions, silently.
    """
    if Path(checkpoint, "metadata").exists():
        return
    writers = store.query(
        "SELECT query_id, count() AS n FROM page_clicks_1m GROUP BY query_id ORDER BY n DESC"
    )
    if writers:
        raise CheckpointMismatch(
            f"page_clicks_1m already holds counts written by query {writers[0]['query_id']}, "
            f"but CHECKPOINT_DIR has no checkpoint at {checkpoint}. A new query would count "
            "from batch 0 again and its counts would lose to the old ones. Restore the "
            "checkpoint folder, or start clean: TRUNCATE TABLE page_clicks_1m, "
            "rejected_events, pipeline_progress, events, unique_visitors_1m, session_activity, "
            "funnel_1m and sessions (make clean "
            "does it for the demo)."
        )


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of at most `size` items, in order (itertools.batched from Python 3.12)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def dedup_token(query_id: str, batch_id: int, chunk: int | None = None) -> str:
    """<query>:<batch>, or <query>:<batch>:<chunk> for one of a batch's chunked inserts."""
    return f"{query_id}:{batch_id}" if chunk is None else f"{query_id}:{batch_id}:{chunk}"


def _utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


def with_retries(action: Callable[[], T], retries: int, backoff_seconds: float, what: str) -> T:
    """Run action; on failure wait and try again, at most `retries` more times.

    The wait doubles each time, up to a minute. A short outage of ClickHouse then costs a
    pause, not a restart of Spark. After the last failure the error propagates: the query
    stops and the supervisor (systemd) starts the processor again from its checkpoint.
    """
    for attempt in range(retries + 1):
        try:
            return action()
        except Exception as exc:
            if attempt == retries:
                raise
            wait = min(backoff_seconds * 2**attempt, MAX_BACKOFF_SECONDS)
            log.warning(
                "%s failed (attempt %d of %d), retrying in %.1fs: %s",
                what,
                attempt + 1,
                retries + 1,
                wait,
                exc,
            )
            time.sleep(wait)
    raise AssertionError("unreachable")


def newest_totals(
    store: ClickHouseStore, window_starts: Sequence[int]
) -> dict[tuple[int, str], int]:
    """The newest count of every page in the given windows, as the table holds it now."""
    totals: dict[tuple[int, str], int] = {}
    # A backfill can touch a window per minute of 89 days: ask in bounded pieces, so no
    # query outgrows the server's max_query_size.
    for some in chunks(sorted(set(window_starts)), WINDOWS_PER_QUERY):
        windows = ", ".join(f"toDateTime({int(w)}, 'UTC')" for w in some)
        rows = store.query(
            "SELECT toUnixTimestamp(window_start) AS window_start, page_url, "
            "argMax(clicks, batch_id) AS clicks FROM page_clicks_1m "
            f"WHERE window_start IN ({windows}) GROUP BY window_start, page_url"
        )
        totals.update({(r["window_start"], r["page_url"]): r["clicks"] for r in rows})
    return totals


def page_clicks_rows(
    increments: Sequence[Increment],
    totals: dict[tuple[int, str], int],
    batch_id: int,
    query_id: str,
) -> list[tuple[Any, ...]]:
    return [
        (
            _utc(r.window_start),
            _utc(r.window_end),
            r.page_url,
            totals.get((r.window_start, r.page_url), 0) + r.clicks,
            batch_id,
            query_id,
        )
        for r in increments
    ]


def rejected_row(row: Row, batch_id: int) -> tuple[Any, ...]:
    return (
        row.kafka_topic,
        row.kafka_partition,
        row.kafka_offset,
        _utc(row.kafka_timestamp_ms / 1000),
        row.reason,
        row.raw_prefix,
        row.raw_bytes,
        row.raw_sha256,
        batch_id,
    )


@dataclass
class SinkOptions:
    window_seconds: float
    retries: int
    backoff_seconds: float
    # How sessions close and are judged; None writes no sessions (a sink for counts only).
    session_rules: sessions.SessionRules | None = None
    # The alert rules judged after each batch; None judges none.
    alert_rules: AlertRules | None = None


class ClickstreamBatchWriter:
    """The callable given to foreachBatch: read the batch once, write every output once."""

    def __init__(
        self,
        spark: SparkSession,
        store: ClickHouseStore,
        query_name: str,
        checkpoint: str,
        options: SinkOptions,
        alerts_topic: Any = None,
        notifier_alerts: Any = None,
    ) -> None:
        self.spark, self.store, self.query_name = spark, store, query_name
        self.checkpoint, self.options = checkpoint, options
        # Where alert changes and heartbeats go for the notifier (app/alerts/topic.py).
        self.alerts_topic = alerts_topic
        # The notifier's own changes (pipeline_stalled), read back for the alerts table.
        self.notifier_alerts = notifier_alerts
        self._query_id: str | None = None
        self._previous_batch_time_ms: int | None = None
        # (batch id, its watermark): where the previous batch's session pass stopped.
        self._closed_through: tuple[int, int] | None = None

    @property
    def query_id(self) -> str:
        # Read lazily: Spark writes the metadata file when the query starts, before batch 0.
        if self._query_id is None:
            self._query_id = checkpoint_query_id(self.checkpoint)
        return self._query_id

    def _retry(self, action: Callable[[], T], what: str) -> T:
        return with_retries(action, self.options.retries, self.options.backoff_seconds, what)

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        # One Spark job per batch: it computes the batch (Kafka read, parse, checks,
        # dedupe) and brings every row to the driver as Arrow, where the batch is split
        # into each output's rows (app/processor/batch.py). No cache, no second job: a
        # Spark job costs a batch a fixed quarter-second or more here.
        valid, rejected = split(transforms.batch_rows(batch, self.options.window_seconds).toArrow())
        # The batch has been computed: its execution's metrics are final now.
        query = self.spark._jsparkSession.streams().get(self.query_id)
        metrics = execution_metrics(query.streamingQuery().lastExecution())
        last_progress = query.lastProgress()
        lag = kafka_lag(json.loads(last_progress.json())) if last_progress else 0
        self.write(
            batch_id,
            window_increments(valid, self.options.window_seconds),
            reject_rows(rejected, REJECTS_PER_INSERT),
            metrics,
            str(query.runId()),
            lag,
            event_rows(valid, batch_id) if valid.num_rows else None,
        )

    def write(
        self,
        batch_id: int,
        increments: Sequence[Increment],
        rejects: Iterable[Row],
        metrics: ExecutionMetrics,
        run_id: str,
        kafka_lag: int,
        events: Any = None,
    ) -> BatchAccount:
        """Write one batch's outputs: counts, events, rejects, then progress and accounting.

        `events` is a pyarrow Table of the batch's valid events (EVENTS_COLUMNS), or None.
        """
        token = dedup_token(self.query_id, batch_id)
        self._retry(lambda: self._write_counts(increments, batch_id, token), "page_clicks_1m")
        if events is not None:
            self._write_events(events, batch_id)
        rejected = self._write_rejects(rejects, batch_id)
        # Before the progress row: a batch whose progress row landed has closed its sessions.
        self._close_sessions(batch_id, metrics.watermark_ms)
        account = BatchAccount(
            read=metrics.read,
            counted=sum(r.clicks for r in increments),
            duplicates_removed=metrics.duplicates_removed,
            dropped_late=metrics.dropped_late,
            rejected=rejected,
        )
        self._judge_alerts(batch_id, metrics.batch_time_ms, kafka_lag, account)
        if not account.balanced:
            # Never expected; if Spark's metrics and the outputs ever disagree, say so
            # loudly (and pipeline_accounting shows the batch as unbalanced).
            log.error("batch %d does not balance: %s", batch_id, account)
        row = self._progress_row(batch_id, run_id, metrics, account, kafka_lag)
        self._retry(
            lambda: self.store.insert(
                "pipeline_progress", PROGRESS_COLUMNS, [row], dedup_token=token
            ),
            "pipeline_progress",
        )
        log.debug("batch %d: %s", batch_id, account)
        return account

    def _write_counts(self, increments: Sequence[Increment], batch_id: int, token: str) -> None:
        if not increments:
            return
        totals = newest_totals(self.store, [r.window_start for r in increments])
        rows = page_clicks_rows(increments, totals, batch_id, self.query_id)
        self.store.insert("page_clicks_1m", PAGE_CLICKS_COLUMNS, rows, dedup_token=token)

    def _write_events(self, events: Any, batch_id: int) -> None:
        """Insert the events in slices, each with its own token (<query>:<batch>:<n>)."""
        for number, start in enumerate(range(0, events.num_rows, EVENTS_PER_INSERT)):
            piece = events.slice(start, EVENTS_PER_INSERT)
            token = dedup_token(self.query_id, batch_id, number)
            self._retry(
                lambda piece=piece, token=token: self.store.insert_arrow(
                    "events", piece, dedup_token=token
                ),
                "events",
            )

    def _previous_watermark_ms(self, batch_id: int) -> int:
        """The watermark of the batches before this one (0 before the first one).

        Kept between batches; after a start, read from pipeline_progress, where every
        batch before this one has its row (a batch writes it last)."""
        if self._closed_through and self._closed_through[0] == batch_id - 1:
            return self._closed_through[1]
        rows = self.store.query(
            "SELECT toInt64(ifNull(max(toUnixTimestamp64Milli(watermark)), 0)) AS ms "
            f"FROM pipeline_progress WHERE query_id = {quote_string(self.query_id)} "
            f"AND batch_id < {int(batch_id)}"
        )
        return int(rows[0]["ms"]) if rows else 0

    def _close_sessions(self, batch_id: int, watermark_ms: int) -> None:
        """Write the sessions this batch's watermark closes (app/processor/sessions.py)."""
        rules = self.options.session_rules
        if rules is None or watermark_ms <= 0:
            return
        previous = self._previous_watermark_ms(batch_id)
        idle_ms = int(rules.idle_timeout_seconds * 1000)
        start, end = previous - idle_ms, watermark_ms - idle_ms
        if end > start:
            summary = self._retry(
                lambda: self.store.query(sessions.closing_sql(start, end)), "sessions"
            )
            if summary and summary[0]["sessions"]:
                sql = sessions.close_sessions_sql(
                    rules,
                    start,
                    end,
                    int(summary[0]["first_ms"]),
                    watermark_ms,
                    batch_id,
                    dedup_token(self.query_id, batch_id) + ":sessions",
                )
                self._retry(lambda: self.store.command(sql), "sessions")
        self._closed_through = (batch_id, max(watermark_ms, previous))

    def _judge_alerts(
        self, batch_id: int, batch_time_ms: int, lag: int, account: BatchAccount
    ) -> None:
        """Judge the alert rules as of this batch, write the alerts, tell the notifier.

        Before the progress row, like every output: a replayed batch judges from the same
        rows and clock, writes under the same token and publishes the same changes.
        """
        rules = self.options.alert_rules
        if rules is None:
            return
        query_id = self.query_id

        def judged() -> tuple[list[Alert], list[Alert]]:
            open_now = judge.open_alerts(self.store, query_id, batch_id)
            read, rejected = judge.records_before(self.store, query_id, batch_id, batch_time_ms)
            minute = (read + account.read, rejected + account.rejected)
            found = judge.readings(self.store, rules, open_now, batch_time_ms, lag, minute)
            return advance(found, open_now, batch_time_ms)

        rows, changes = self._retry(judged, "alerts")
        if rows:
            token = dedup_token(query_id, batch_id) + ":alerts"
            values = [judge.alert_row(a, batch_id, query_id) for a in rows]
            self._retry(
                lambda: self.store.insert(
                    "alerts", judge.ALERTS_COLUMNS, values, dedup_token=token
                ),
                "alerts",
            )
        for change in changes:
            log.warning("alert %s", change.message)
        self._record_notifier_alerts()
        if self.alerts_topic is not None:
            heartbeat = alert_topic.heartbeat_json(query_id, batch_id, batch_time_ms)
            self._retry(lambda: self.alerts_topic.publish(changes, heartbeat), "alerts topic")

    def _record_notifier_alerts(self) -> None:
        """Write what the notifier judged (it cannot open an embedded store), then commit.

        Not part of the batch's outputs: a replayed batch may find none or others, and
        that is right, since each row's token is its alert and state, not the batch.
        """
        if self.notifier_alerts is None:
            return
        try:
            taken = self.notifier_alerts.take()
        except KafkaError as exc:  # the broker's trouble is no reason to fail the batch
            log.warning("notifier alerts not read this batch: %s", exc)
            return
        if taken:
            self._retry(lambda: judge.record_notifier_alerts(self.store, taken), "alerts")
        try:
            self.notifier_alerts.commit()
        except KafkaError as exc:  # read again after a restart; their tokens drop them
            log.warning("notifier alerts: offset not committed: %s", exc)

    def _write_rejects(self, rejects: Iterable[Row], batch_id: int) -> int:
        """Insert rejects in bounded chunks, each with its own token; return how many."""
        written = 0
        for number, chunk in enumerate(chunks(rejects, REJECTS_PER_INSERT)):
            rows = [rejected_row(r, batch_id) for r in chunk]
            token = dedup_token(self.query_id, batch_id, number)
            self._retry(
                lambda rows=rows, token=token: self.store.insert(
                    "rejected_events", REJECTED_COLUMNS, rows, dedup_token=token
                ),
                "rejected_events",
            )
            written += len(rows)
        return written

    def _progress_row(
        self,
        batch_id: int,
        run_id: str,
        metrics: ExecutionMetrics,
        account: BatchAccount,
        lag: int,
    ) -> tuple[Any, ...]:
        now_ms = int(time.time() * 1000)
        duration_ms = max(now_ms - metrics.batch_time_ms, 0)
        since_previous = (
            (metrics.batch_time_ms - self._previous_batch_time_ms) / 1000
            if self._previous_batch_time_ms is not None
            else 0.0
        )
        self._previous_batch_time_ms = metrics.batch_time_ms
        return (
            self.query_name,
            self.query_id,
            run_id,
            batch_id,
            _utc(now_ms / 1000),
            _utc(metrics.batch_time_ms / 1000),
            account.read,
            account.read / since_previous if since_previous > 0 else 0.0,
            account.read / (duration_ms / 1000) if duration_ms > 0 else 0.0,
            duration_ms,
            account.dropped_late,
            metrics.state_rows,
            lag,
            _utc(metrics.watermark_ms / 1000) if metrics.watermark_ms > 0 else None,
            account.counted,
            account.duplicates_removed,
            account.rejected,
        )
