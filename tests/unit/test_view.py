"""The demo's terminal view: what it reads from ClickHouse and how it draws it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.alerts.judge import ALERTS_COLUMNS
from app.processor.batch import EVENTS_COLUMNS
from app.processor.progress import PROGRESS_COLUMNS
from app.processor.sink import PAGE_CLICKS_COLUMNS, REJECTED_COLUMNS
from app.runtime import view
from tests.events_table import arrow_events


def moments() -> tuple[datetime, datetime, datetime]:
    """Now (at :30 of this minute), this minute and the one before, when a test runs: the
    views that count back from ClickHouse's clock (active_sessions, the last hour) must
    see the rows as recent however long the suite ran before this test."""
    now = datetime.now(UTC).replace(second=30, microsecond=0)
    current = now.replace(second=0)
    return now, current, current - timedelta(minutes=1)


BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"


def test_render_draws_both_windows_and_the_health_line():
    snap = view.Snapshot(
        taken_at=datetime(2026, 1, 15, 12, 0, 30, tzinfo=UTC),
        window_seconds=60,
        current_window=datetime(2026, 1, 15, 12, 0, tzinfo=UTC),
        current_top=[("/", 12), ("/cart", 3)],
        previous_top=[("/products/1", 40)],
        counted_total=55,
        events_per_second=199.5,
        rejected=[("malformed_json", 2)],
        late_rows=4,
        batch_duration_ms=812,
        kafka_lag=9,
        batches=31,
        records_read=71,
        counted_events=55,
        duplicates_removed=10,
        rejected_total=2,
        visitors_this_minute=6,
        visitors_last_hour=40,
        active_sessions=5,
        bot_agent_share=0.125,
        sessions_last_hour=30,
        bot_sessions_last_hour=4,
        funnel=[20, 12, 9, 4, 2, 1],
        open_alerts=["FIRING page_drop - /cart: 0 events in the last window, 30.0 expected"],
    )
    assert view.render(snap, "running").splitlines() == [
        "clickstream demo  2026-01-15 12:00:30 UTC  running",
        "",
        "current window 12:00:00 (60s)             previous window 11:59:00",
        "-----------------------------             ------------------------",
        "/                                   12    /products/1                         40",
        "/cart                                3    ",
        "",
        "events in/s     199.5    batch duration    812 ms    kafka lag       9    batches 31",
        "clicks counted       55    late rows dropped      4",
        "unique visitors: this minute 6, last hour 40    active sessions (5 min) 5"
        "    bot-agent share 12.5%",
        "funnel, last hour: home 20 > category 12 > product 9 > cart 4 > checkout 2 > purchase 1",
        "sessions closed, last hour 30 (bots 4)",
        "records read 71 = counted 55 + duplicates 10 + late 4 + rejected 2",
        "rejected: malformed_json 2",
        "alerts: FIRING page_drop - /cart: 0 events in the last window, 30.0 expected",
    ]


def test_render_before_any_data():
    snap = view.Snapshot(
        datetime(2026, 1, 15, 12, 0, 30, tzinfo=UTC), 60, datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    )
    text = view.render(snap)
    assert "(none yet)" in text and text.endswith("rejected: none\nalerts: none firing")


def test_snapshot_reads_latest_counts_rejects_and_progress(store):
    NOW, CURRENT, PREVIOUS = moments()
    store.insert(
        "page_clicks_1m",
        PAGE_CLICKS_COLUMNS,
        [
            (CURRENT, CURRENT + timedelta(minutes=1), "/", 4, 1, "q"),
            (CURRENT, CURRENT + timedelta(minutes=1), "/", 9, 2, "q"),  # newer count wins
            (CURRENT, CURRENT + timedelta(minutes=1), "/cart", 2, 2, "q"),
            (PREVIOUS, CURRENT, "/help", 7, 1, "q"),
        ],
        dedup_token="t1",
    )
    store.insert(
        "rejected_events",
        REJECTED_COLUMNS,
        [
            ("t", 0, 1, NOW, "malformed_json", "{", 1, "h1", 1),
            ("t", 0, 2, NOW, "malformed_json", "{", 1, "h1", 1),
            ("t", 0, 3, NOW, "missing_user_id", "{}", 2, "h2", 1),
        ],
        dedup_token="t2",
    )

    def progress(batch, seconds_ago, duration, late, lag, read, counted, duplicates, rejected):
        at = NOW - timedelta(seconds=seconds_ago)
        return (
            "clickstream", "q", "r", batch, at, at, read, 20.0 + batch, 50.0, duration,
            late, 9, lag, None, counted, duplicates, rejected,
        )  # fmt: skip

    store.insert(
        "pipeline_progress",
        PROGRESS_COLUMNS,
        [progress(1, 10, 700, 3, 5, 20, 14, 1, 2), progress(2, 5, 900, 1, 2, 10, 7, 1, 1)],
        dedup_token="t3",
    )
    # A replay of batch 2 reported again (another token): one row per batch still counts.
    store.insert(
        "pipeline_progress",
        PROGRESS_COLUMNS,
        [progress(2, 4, 950, 1, 2, 10, 7, 1, 1)],
        dedup_token="t4",
    )
    # Visitors: ann and bob this minute, cid a minute ago, dan two hours ago (not counted).
    events = [
        ("e1", NOW, "ann"),
        ("e2", NOW, "ann"),
        ("e3", NOW, "bob"),
        ("e4", PREVIOUS, "ann"),
        ("e5", PREVIOUS, "cid"),
        ("e6", NOW - timedelta(hours=2), "dan"),
    ]
    store.insert_arrow("events", arrow_events(events), dedup_token="t5")
    # Sessions: s1 reaches the cart this minute; s2 is a crawler at home.
    sessions = [
        ("e7", NOW, "eve", "s1", "/", "page_view", BROWSER),
        ("e8", NOW, "eve", "s1", "/cart", "page_view", BROWSER),
        ("e9", NOW, "bot-1", "s2", "/", "page_view", "curl/8.5.0"),
    ]
    store.insert(
        "events",
        EVENTS_COLUMNS,
        [
            (*e[:4], e[4], e[5], None, e[6], None, None, 1, 0, 100 + i, 1)
            for i, e in enumerate(sessions)
        ],
        dedup_token="t6",
    )

    # Alerts: /cart fires (its newest row), /checkout fired and resolved.
    def alert(alert_id, state, last_seen, message):
        return (
            alert_id,
            "page_drop",
            alert_id,
            state,
            0.0,
            30.0,
            15.0,
            PREVIOUS,
            last_seen,
            last_seen if state == "resolved" else None,
            message,
            1,
            "q",
        )

    store.insert(
        "alerts",
        ALERTS_COLUMNS,
        [
            alert("/cart", "firing", PREVIOUS, "FIRING /cart"),
            alert("/cart", "firing", NOW, "FIRING /cart, still"),
            alert("/checkout", "firing", PREVIOUS, "FIRING /checkout"),
            alert("/checkout", "resolved", NOW, "RESOLVED /checkout"),
        ],
        dedup_token="t7",
    )
    snap = view.snapshot(store, 60, now=NOW)
    assert snap.open_alerts == ["FIRING /cart, still"]
    assert (snap.visitors_this_minute, snap.visitors_last_hour) == (4, 5)
    assert (snap.active_sessions, snap.bot_agent_share) == (2, 1 / 8)  # 1 of 8 events recent
    # s1 reached the cart, so every step before it; the crawler is left out.
    assert snap.funnel == [1, 1, 1, 1, 0, 0]
    assert (snap.sessions_last_hour, snap.bot_sessions_last_hour) == (0, 0)  # none closed
    assert snap.current_top == [("/", 9), ("/cart", 2)]
    assert snap.previous_top == [("/help", 7)]
    assert snap.counted_total == 18
    assert snap.rejected == [("malformed_json", 2), ("missing_user_id", 1)]
    assert (snap.late_rows, snap.batch_duration_ms, snap.kafka_lag, snap.batches) == (4, 950, 2, 2)
    assert (
        snap.records_read,
        snap.counted_events,
        snap.duplicates_removed,
        snap.rejected_total,
        snap.unbalanced_batches,
    ) == (30, 21, 2, 3, 0)


def test_the_demo_names_a_missing_java_before_starting_anything(monkeypatch, capsys):
    from app.runtime import demo

    monkeypatch.setattr(demo.shutil, "which", lambda tool: None)
    monkeypatch.setattr(demo, "run", lambda *a: pytest.fail("started without java"))
    assert demo.main(["--demo-duration", "1s"]) == 1
    assert capsys.readouterr().err == (
        "demo: error: java is not on PATH (Java 17 runs the Kafka broker and Spark)\n"
    )
