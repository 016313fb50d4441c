"""ClickHouse against the producer's manifest: the one comparison the crash tests share.

After any crash and restart, every output must equal what was produced: the counts per
window and page, the rejects per reason, every counted event once in `events`, and the
unique visitors derived from those events; and no replayed insert may have landed twice.
"""

from __future__ import annotations

from app.storage.base import ClickHouseStore


def assert_outputs_equal_manifest(store: ClickHouseStore, truth: dict) -> None:
    rows = store.query("SELECT window_start, page_url, clicks FROM page_clicks_latest")
    assert _as_manifest(rows, "clicks") == truth["counts"]
    assert sum(r["clicks"] for r in rows) == truth["counted_events"]

    by_reason = store.query(
        "SELECT reason, count() AS n FROM rejected_events FINAL GROUP BY reason"
    )
    assert {r["reason"]: r["n"] for r in by_reason} == truth["rejected"]

    # The events table holds every counted event once: the same counts per window and
    # page as the manifest (the tests run 1-minute windows), no event_id twice.
    per_window = store.query(
        "SELECT toStartOfMinute(event_time) AS window_start, page_url, count() AS n "
        "FROM events GROUP BY window_start, page_url"
    )
    assert _as_manifest(per_window, "n") == truth["counts"]

    # The unique visitors' states match the events they were made from, minute by minute.
    visitors = store.query(
        "SELECT window_start, unique_visitors, events FROM unique_visitors_per_minute "
        "ORDER BY window_start"
    )
    expected = store.query(
        "SELECT toStartOfMinute(event_time) AS window_start, uniqExact(user_id) AS "
        "unique_visitors, count() AS events FROM events GROUP BY window_start "
        "ORDER BY window_start"
    )
    assert visitors == expected

    # No replayed insert landed twice, however often a batch was cut off.
    twice = store.query(
        "SELECT (SELECT count() FROM rejected_events) - (SELECT uniqExact(kafka_partition, "
        "kafka_offset) FROM rejected_events) AS rejects, "
        "(SELECT count() FROM page_clicks_1m) - (SELECT uniqExact(window_start, page_url, "
        "batch_id) FROM page_clicks_1m) AS counts, "
        "(SELECT count() FROM events) - (SELECT uniqExact(event_id) FROM events) AS events"
    )
    assert twice == [{"rejects": 0, "counts": 0, "events": 0}]


def _as_manifest(rows: list[dict], count: str) -> dict[str, dict[str, int]]:
    """Rows of (window_start, page_url, count) in the manifest's shape: window -> page -> n."""
    shaped: dict[str, dict[str, int]] = {}
    for r in rows:
        window = r["window_start"].strftime("%Y-%m-%dT%H:%M:%SZ")
        shaped.setdefault(window, {})[r["page_url"]] = r[count]
    return shaped
