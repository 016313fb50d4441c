"""pipeline_progress: the accounting identity and the lag read from Spark's progress JSON.

The metrics themselves come from a real Spark execution; the integration tests check
them against streams whose every record is known (test_pipeline, test_fuzz).
"""

from __future__ import annotations

from app.processor.progress import BatchAccount, kafka_lag


def test_a_batch_balances_only_when_every_record_is_in_one_of_four_places():
    assert BatchAccount(
        read=10, counted=5, duplicates_removed=2, dropped_late=1, rejected=2
    ).balanced
    assert not BatchAccount(
        read=10, counted=5, duplicates_removed=2, dropped_late=1, rejected=1
    ).balanced
    assert not BatchAccount(
        read=10, counted=6, duplicates_removed=2, dropped_late=1, rejected=2
    ).balanced


def test_lag_is_the_worst_source_and_tolerates_missing_metrics():
    progress = {
        "sources": [
            {"metrics": {"maxOffsetsBehindLatest": "17", "avgOffsetsBehindLatest": "9.0"}},
            {"metrics": {"maxOffsetsBehindLatest": "40"}},
            {"metrics": {"maxOffsetsBehindLatest": "NaN"}},
            {"metrics": {}},
            {},
        ]
    }
    assert kafka_lag(progress) == 40
    assert kafka_lag({}) == 0
    assert kafka_lag({"sources": None}) == 0
