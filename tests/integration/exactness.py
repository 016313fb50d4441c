"""ClickHouse against the producer's manifest: the one comparison the crash tests share.

After any crash and restart, every output must equal what was produced: the counts per
window and page, the rejects per reason, every counted event once in `events`, and the
unique visitors derived from those events; and no replayed insert may have landed twice.
The insights too: unique users and the funnel per minute equal the manifest's, and every
session the watermark has closed has exactly the row the manifest's events make.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.contract import parse_event_time
from app.funnel import FUNNEL_STEPS
from app.storage.base import ClickHouseStore

# The columns of a closed session the manifest knows, and its names for them.
SESSION_TRUTH = {
    "user_id": "user_id",
    "session_start": "start",
    "session_end": "end",
    "events": "events",
    "page_views": "page_views",
    "max_views_of_one_page": "max_views_of_one_page",
    "deepest_step": "deepest_step",
    "entry_page": "entry_page",
    "exit_page": "exit_page",
}


def assert_outputs_equal_manifest(
    store: ClickHouseStore, truth: dict, idle_timeout_seconds: float = 1800
) -> list[dict]:
    """Compare every output; return the closed sessions (so a test can ask for some)."""
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
    return assert_insights_equal_manifest(store, truth, idle_timeout_seconds)


def assert_insights_equal_manifest(
    store: ClickHouseStore, truth: dict, idle_timeout_seconds: float = 1800
) -> list[dict]:
    """Unique users, funnel and closed sessions against the manifest; the sessions closed."""
    insights = truth["insights"]
    visitors = store.query("SELECT window_start, unique_visitors FROM unique_visitors_per_minute")
    assert {_window(r["window_start"]): r["unique_visitors"] for r in visitors} == {
        w: i["unique_users"] for w, i in insights.items()
    }
    funnel = store.query("SELECT * FROM funnel_per_minute")
    assert {_window(r["window_start"]): [r[s] for s in FUNNEL_STEPS] for r in funnel} == {
        w: i["funnel"] for w, i in insights.items() if any(i["funnel"])
    }

    closed = store.query("SELECT * FROM sessions FINAL")
    # Each closed session has the row its events make.
    sessions = truth["sessions"]
    assert {r["session_id"] for r in closed} <= set(sessions)
    for row in closed:
        expected = sessions[row["session_id"]]
        got = {k: row[k] for k in SESSION_TRUTH}
        want = {k: expected[v] for k, v in SESSION_TRUTH.items()}
        for key in ("session_start", "session_end"):
            want[key] = parse_event_time(want[key])
        assert got == want, row["session_id"]
        assert row["bounce"] == (expected["page_views"] <= 1)
    # Closed are exactly the sessions whose last event is more than the idle timeout
    # behind the last batch's watermark: none lost, none closed early.
    watermark = store.query(
        "SELECT toInt64(ifNull(max(toUnixTimestamp64Milli(watermark)), 0)) AS ms "
        "FROM pipeline_progress"
    )[0]["ms"]
    close_point = watermark - idle_timeout_seconds * 1000
    behind = {
        sid
        for sid, s in sessions.items()
        if round(parse_event_time(s["end"]).timestamp() * 1000) < close_point
    }
    assert {r["session_id"] for r in closed} == behind
    twice = store.query("SELECT count() - uniqExact(session_id) AS n FROM sessions")
    assert twice == [{"n": 0}]
    return closed


def _window(start: datetime) -> str:
    """A window's start as the manifest writes it (2026-12-02T05:00:00Z)."""
    return start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_manifest(rows: list[dict], count: str) -> dict[str, dict[str, int]]:
    """Rows of (window_start, page_url, count) in the manifest's shape: window -> page -> n."""
    shaped: dict[str, dict[str, int]] = {}
    for r in rows:
        window = _window(r["window_start"])
        shaped.setdefault(window, {})[r["page_url"]] = r[count]
    return shaped
