"""One collected micro-batch, split in the driver into what each output needs.

The sink collects a batch once, as a pyarrow Table of `transforms.batch_rows` (one Spark
job), and these functions cut it: the valid events for `events`, their window increments
for `page_clicks_1m`, and the rejects for `rejected_events`. Arrow compute does the work
in C++; no Python object is made per valid event.

Memory: the whole batch sits in the driver at once, at most MAX_OFFSETS_PER_TRIGGER
records of at most MAX_EVENT_BYTES each (a reject keeps at most REJECT_SAMPLE_BYTES of
its message), about 40 MB for a full batch of ordinary events at the defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Row

# The events table's columns, in its order: the event's fields, where it sits in Kafka,
# and the batch that wrote it.
EVENTS_COLUMNS = (
    "event_id",
    "event_time",
    "user_id",
    "session_id",
    "page_url",
    "event_type",
    "referrer",
    "user_agent",
    "device",
    "country",
    "schema_version",
    "kafka_partition",
    "kafka_offset",
    "batch_id",
)
REJECT_COLUMNS = (
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp_ms",
    "reason",
    "raw_prefix",
    "raw_bytes",
    "raw_sha256",
)


class Increment(NamedTuple):
    """How many valid events of one page a batch adds to one window."""

    window_start: int
    window_end: int
    page_url: str
    clicks: int


def split(rows: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(valid, rejected): a row is rejected when it has a reason. Order is kept.

    A batch without rejects (the usual one) is returned as it is: filtering would copy
    all of it, and the driver would hold the batch twice while it inserts the events.
    """
    if rows["reason"].null_count == rows.num_rows:
        return rows, rows.slice(0, 0)
    rejected = pc.is_valid(rows["reason"])
    return rows.filter(pc.invert(rejected)), rows.filter(rejected)


def window_increments(valid: pa.Table, window_seconds: float) -> list[Increment]:
    """Clicks per (window, page) in the batch, in a fixed order."""
    if valid.num_rows == 0:
        return []
    width = int(window_seconds)
    counted = (
        valid.select(["window_start", "page_url"])
        .group_by(["window_start", "page_url"], use_threads=False)
        .aggregate([([], "count_all")])
        .sort_by([("window_start", "ascending"), ("page_url", "ascending")])
    )
    return [
        Increment(int(start), int(start) + width, page, int(clicks))
        for start, page, clicks in zip(
            counted["window_start"].to_pylist(),
            counted["page_url"].to_pylist(),
            counted["count_all"].to_pylist(),
            strict=True,
        )
    ]


def event_rows(valid: pa.Table, batch_id: int) -> pa.Table:
    """The valid events as the events table takes them (EVENTS_COLUMNS)."""
    events = valid.select(list(EVENTS_COLUMNS[:-1]))
    return events.append_column("batch_id", pa.array([batch_id] * valid.num_rows, pa.int64()))


def reject_rows(rejected: pa.Table, slice_rows: int) -> Iterator[Row]:
    """The rejects as rows, made a slice at a time (a flood never becomes one list)."""
    columns = rejected.select(list(REJECT_COLUMNS))
    for start in range(0, columns.num_rows, slice_rows):
        for values in columns.slice(start, slice_rows).to_pylist():
            yield Row(**values)
