"""Rows for the events table, shaped as the sink hands them to the store (Arrow)."""

from __future__ import annotations

from datetime import datetime


def arrow_events(rows: list[tuple[str, datetime, str]], batch_id: int = 1, page_url: str = "/cart"):
    """A pyarrow Table of events as the sink hands it over (EVENTS_COLUMNS), all on one page."""
    import pyarrow as pa

    from app.processor.batch import EVENTS_COLUMNS

    n = len(rows)
    columns = {
        "event_id": [r[0] for r in rows],
        "event_time": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
        "user_id": [r[2] for r in rows],
        "session_id": [None] * n,
        "page_url": [page_url] * n,
        "event_type": ["page_view"] * n,
        "referrer": [None] * n,
        "user_agent": ["Mozilla/5.0"] * n,
        "device": [None] * n,
        "country": ["DE"] * n,
        "schema_version": pa.array([1] * n, pa.int64()),
        "kafka_partition": pa.array([0] * n, pa.int32()),
        "kafka_offset": pa.array(range(n), pa.int64()),
        "batch_id": pa.array([batch_id] * n, pa.int64()),
    }
    assert tuple(columns) == EVENTS_COLUMNS
    return pa.table(columns)
