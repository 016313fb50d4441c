"""A StreamingQueryListener that writes each micro-batch's progress to pipeline_progress."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pyspark.sql.streaming import StreamingQueryListener

from app.storage import ClickHouseStore

log = logging.getLogger(__name__)

PROGRESS_COLUMNS = (
    "query_name",
    "query_id",
    "run_id",
    "batch_id",
    "reported_at",
    "num_input_rows",
    "input_rows_per_second",
    "processed_rows_per_second",
    "batch_duration_ms",
    "rows_dropped_by_watermark",
    "state_rows",
    "kafka_lag",
    "watermark",
)


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _rate(value: Any) -> float:
    # Spark reports NaN for a rate over an empty interval.
    return 0.0 if value is None or value != value else float(value)


def kafka_lag(sources: list[Any]) -> int:
    """Records between the query's position and the end of the topic, worst partition."""
    lag = 0
    for source in sources:
        metrics = getattr(source, "metrics", None) or {}
        value = metrics.get("maxOffsetsBehindLatest")
        if value not in (None, "", "NaN"):
            lag = max(lag, int(float(value)))
    return lag


def progress_row(progress: Any) -> tuple[Any, ...]:
    operators = progress.stateOperators or []
    return (
        progress.name or "",
        str(progress.id),
        str(progress.runId),
        progress.batchId,
        _instant(progress.timestamp),
        progress.numInputRows,
        _rate(progress.inputRowsPerSecond),
        _rate(progress.processedRowsPerSecond),
        progress.batchDuration,
        sum(op.numRowsDroppedByWatermark for op in operators),
        sum(op.numRowsTotal for op in operators),
        kafka_lag(progress.sources or []),
        _instant((progress.eventTime or {}).get("watermark")),
    )


class PipelineProgressListener(StreamingQueryListener):
    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store

    def onQueryStarted(self, event: Any) -> None:
        log.info("query %s started (id %s, run %s)", event.name, event.id, event.runId)

    def onQueryProgress(self, event: Any) -> None:
        try:
            self.store.insert("pipeline_progress", PROGRESS_COLUMNS, [progress_row(event.progress)])
        except Exception:  # metrics must never take the pipeline down
            log.exception("could not record progress")

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        if event.exception:
            log.error("query %s failed: %s", event.id, event.exception)
