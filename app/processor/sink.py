"""foreachBatch sinks: one idempotent ClickHouse insert per micro-batch.

Exactly-once comes from three things together. Spark replays a batch after a crash with
the same batch id and the same offsets (its write-ahead log in the checkpoint); each
insert carries the token "<query id>:<batch id>", where the query id is the one stored in
the checkpoint and so survives restarts; and ClickHouse drops an insert whose token it has
seen (non_replicated_deduplication_window on the tables). A replayed batch therefore
lands once, and ReplacingMergeTree keeps the newest count of each key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, Row

from app.storage import ClickHouseStore

log = logging.getLogger(__name__)

PAGE_CLICKS_COLUMNS = ("window_start", "window_end", "page_url", "clicks", "batch_id", "query_id")
REJECTED_COLUMNS = (
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "reason",
    "raw_value",
    "batch_id",
)


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
            "checkpoint folder, or start clean: TRUNCATE TABLE page_clicks_1m and "
            "rejected_events (make clean does both for the demo)."
        )


def dedup_token(query_id: str, batch_id: int) -> str:
    return f"{query_id}:{batch_id}"


def _utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


def page_clicks_row(row: Row, batch_id: int, query_id: str) -> tuple[Any, ...]:
    return (
        _utc(row.window_start),
        _utc(row.window_end),
        row.page_url,
        row.clicks,
        batch_id,
        query_id,
    )


def rejected_row(row: Row, batch_id: int, query_id: str) -> tuple[Any, ...]:
    return (
        row.kafka_topic,
        row.kafka_partition,
        row.kafka_offset,
        _utc(row.kafka_timestamp_ms / 1000),
        row.reason,
        row.raw_value,
        batch_id,
    )


class ClickHouseBatchWriter:
    """The callable given to foreachBatch: collect the batch, insert it once."""

    def __init__(
        self,
        store: ClickHouseStore,
        table: str,
        columns: Sequence[str],
        to_row: Callable[[Row, int, str], tuple[Any, ...]],
        checkpoint: str,
    ) -> None:
        self.store, self.table, self.columns = store, table, columns
        self.to_row, self.checkpoint = to_row, checkpoint
        self._query_id: str | None = None

    @property
    def query_id(self) -> str:
        # Read lazily: Spark writes the metadata file when the query starts, before batch 0.
        if self._query_id is None:
            self._query_id = checkpoint_query_id(self.checkpoint)
        return self._query_id

    def write_rows(self, rows: Sequence[Row], batch_id: int) -> int:
        converted = [self.to_row(r, batch_id, self.query_id) for r in rows]
        self.store.insert(
            self.table, self.columns, converted, dedup_token=dedup_token(self.query_id, batch_id)
        )
        return len(converted)

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        # A batch is small: at most one row per (open window, page) touched, or the
        # rejects among maxOffsetsPerTrigger records; collecting it to the driver is cheap.
        written = self.write_rows(batch.collect(), batch_id)
        log.debug("%s batch %d: %d rows", self.table, batch_id, written)
