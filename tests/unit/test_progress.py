"""The progress listener's mapping from Spark's progress report to pipeline_progress."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from app.processor.progress import PROGRESS_COLUMNS, kafka_lag, progress_row


def progress(**changes):
    """A progress report shaped like pyspark's StreamingQueryProgress (read-only fields)."""
    base = dict(
        name="page_clicks_1m",
        id="q-1",
        runId="r-1",
        batchId=12,
        timestamp="2026-01-15T12:00:05.250Z",
        numInputRows=900,
        inputRowsPerSecond=180.0,
        processedRowsPerSecond=450.5,
        batchDuration=1998,
        eventTime={"watermark": "2026-01-15T11:58:00.000Z"},
        stateOperators=[
            SimpleNamespace(numRowsDroppedByWatermark=3, numRowsTotal=100),
            SimpleNamespace(numRowsDroppedByWatermark=1, numRowsTotal=40),
        ],
        sources=[
            SimpleNamespace(
                metrics={"maxOffsetsBehindLatest": "17", "avgOffsetsBehindLatest": "9.0"}
            )
        ],
    )
    base.update(changes)
    return SimpleNamespace(**base)


def test_a_progress_report_becomes_one_row():
    row = dict(zip(PROGRESS_COLUMNS, progress_row(progress()), strict=True))
    assert row == {
        "query_name": "page_clicks_1m",
        "query_id": "q-1",
        "run_id": "r-1",
        "batch_id": 12,
        "reported_at": datetime(2026, 1, 15, 12, 0, 5, 250000, tzinfo=UTC),
        "num_input_rows": 900,
        "input_rows_per_second": 180.0,
        "processed_rows_per_second": 450.5,
        "batch_duration_ms": 1998,
        "rows_dropped_by_watermark": 4,
        "state_rows": 140,
        "kafka_lag": 17,
        "watermark": datetime(2026, 1, 15, 11, 58, tzinfo=UTC),
    }


def test_an_idle_stateless_query_reports_zeros_not_nan():
    row = dict(
        zip(
            PROGRESS_COLUMNS,
            progress_row(
                progress(
                    name="rejected_events",
                    numInputRows=0,
                    inputRowsPerSecond=float("nan"),
                    processedRowsPerSecond=float("nan"),
                    eventTime={},
                    stateOperators=[],
                    sources=[],
                )
            ),
            strict=True,
        )
    )
    assert (row["input_rows_per_second"], row["processed_rows_per_second"]) == (0.0, 0.0)
    assert (row["rows_dropped_by_watermark"], row["state_rows"], row["kafka_lag"]) == (0, 0, 0)
    assert row["watermark"] is None


def test_lag_is_the_worst_source_and_tolerates_missing_metrics():
    sources = [
        SimpleNamespace(metrics={"maxOffsetsBehindLatest": "5"}),
        SimpleNamespace(metrics={"maxOffsetsBehindLatest": "NaN"}),
        SimpleNamespace(metrics=None),
        SimpleNamespace(metrics={"maxOffsetsBehindLatest": "12.0"}),
    ]
    assert kafka_lag(sources) == 12
