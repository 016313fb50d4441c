"""The storage layer: migrations and insert semantics on the real ClickHouse engine (chDB)."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, DataError

from app.alerts.judge import ALERTS_COLUMNS
from app.processor.sessions import SESSIONS_COLUMNS
from app.processor.sink import REJECTED_COLUMNS
from app.storage import open_store
from app.storage.embedded import EmbeddedStore
from app.storage.migrations import MigrationError, discover, migrate
from app.storage.server import ServerStore, connection_args
from tests.events_table import arrow_events
from tests.fake_clickhouse import FakeClickHouseClient, non_nullable_columns

SQL = Path(__file__).resolve().parents[2] / "app" / "sql"
# Recent, so the tables' TTL (which drops expired rows as they are inserted) keeps it.
W = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def test_migrations_apply_once_and_are_recorded(tmp_path):
    store = EmbeddedStore(str(tmp_path / "ch"), "analytics")
    try:
        first = migrate(store)
        assert [(m.version, m.name) for m in first] == [
            (1, "page_clicks_1m"),
            (2, "rejected_events"),
            (3, "pipeline_progress"),
            (4, "dashboard_views"),
            (5, "exact_outputs"),
            (6, "events_and_unique_visitors"),
            (7, "bot_agents"),
            (8, "sessions_and_funnel"),
            (9, "alerts"),
            (10, "data_gaps"),
        ]
        assert migrate(store) == []
        ledger = store.query("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in ledger] == [(m.version, m.name) for m in first]
        tables = store.query(
            "SELECT name, engine FROM system.tables WHERE database = 'analytics' ORDER BY name"
        )
        assert [(r["name"], r["engine"]) for r in tables] == [
            ("active_sessions", "View"),
            ("alerts", "ReplacingMergeTree"),
            ("alerts_latest", "View"),
            ("bot_sessions", "View"),
            ("bots", "View"),
            ("data_gaps", "ReplacingMergeTree"),
            ("events", "MergeTree"),
            ("funnel_1m", "AggregatingMergeTree"),
            ("funnel_1m_mv", "MaterializedView"),
            ("funnel_last", "View"),
            ("funnel_per_minute", "View"),
            ("open_alerts", "View"),
            ("page_clicks_1m", "ReplacingMergeTree"),
            ("page_clicks_latest", "View"),
            ("page_events_1s", "AggregatingMergeTree"),
            ("page_events_1s_mv", "MaterializedView"),
            ("pipeline_accounting", "View"),
            ("pipeline_accounting_1m", "View"),
            ("pipeline_health", "View"),
            ("pipeline_progress", "ReplacingMergeTree"),
            ("problem_sessions", "View"),
            ("rejected_events", "ReplacingMergeTree"),
            ("rejected_events_by_reason", "View"),
            ("schema_migrations", "MergeTree"),
            ("session_activity", "AggregatingMergeTree"),
            ("session_activity_mv", "MaterializedView"),
            ("sessions", "ReplacingMergeTree"),
            ("sessions_per_minute", "View"),
            ("top_pages", "View"),
            ("unique_visitors_1m", "AggregatingMergeTree"),
            ("unique_visitors_1m_mv", "MaterializedView"),
            ("unique_visitors_last", "View"),
            ("unique_visitors_per_minute", "View"),
        ]
    finally:
        store.close()


def test_a_changed_migration_is_refused(tmp_path):
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    (sql_dir / "001_t.sql").write_text("CREATE TABLE t (x UInt8) ENGINE = MergeTree ORDER BY x")
    store = EmbeddedStore(str(tmp_path / "ch"), "clickstream")
    try:
        assert len(migrate(store, sql_dir)) == 1
        (sql_dir / "001_t.sql").write_text("CREATE TABLE t (x UInt16) ENGINE = Log")
        with pytest.raises(MigrationError, match="001_t was changed after it was applied"):
            migrate(store, sql_dir)
        (sql_dir / "002_more.sql").write_text("CREATE TABLE u (x UInt8) ENGINE = Log")
    finally:
        store.close()


def test_migration_names_are_checked(tmp_path):
    (tmp_path / "1_bad name.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match=r"1_bad name\.sql: migrations are named"):
        discover(tmp_path)


def test_multi_statement_files_split_on_line_ending_semicolons():
    views = next(m for m in discover(SQL) if m.name == "dashboard_views")
    created = [
        re.search(r"CREATE VIEW IF NOT EXISTS (\w+)", s).group(1) for s in views.statements()
    ]
    assert created == [
        "page_clicks_latest",
        "top_pages",
        "rejected_events_by_reason",
        "pipeline_health",
    ]


def test_insert_with_the_same_token_lands_once(store):
    row = (W, W.replace(minute=1), "/cart", 5, 7, "q")
    columns = ("window_start", "window_end", "page_url", "clicks", "batch_id", "query_id")
    store.insert("page_clicks_1m", columns, [row], dedup_token="q:7")
    store.insert("page_clicks_1m", columns, [row], dedup_token="q:7")
    store.insert(
        "page_clicks_1m", columns, [(W, W.replace(minute=1), "/cart", 6, 8, "q")], dedup_token="q:8"
    )
    assert store.query("SELECT count() AS n FROM page_clicks_1m")[0]["n"] == 2
    latest = store.query("SELECT window_start, page_url, clicks FROM page_clicks_latest")
    assert latest == [{"window_start": W, "page_url": "/cart", "clicks": 6}]


def test_events_land_once_and_unique_visitors_merge_over_minutes(store):
    minute = timedelta(minutes=1)
    first = arrow_events(
        [("e1", W, "ann"), ("e2", W + timedelta(seconds=30), "ann"), ("e3", W, "bob")], 1
    )
    second = arrow_events([("e4", W + minute, "ann"), ("e5", W + minute, "cid")], 2)
    store.insert_arrow("events", first, dedup_token="q:1:0")
    store.insert_arrow("events", first, dedup_token="q:1:0")  # a replay: dropped
    store.insert_arrow("events", second, dedup_token="q:2:0")
    events = store.query("SELECT event_id, event_time, user_id FROM events ORDER BY event_id")
    assert [(r["event_id"], r["event_time"], r["user_id"]) for r in events] == [
        ("e1", W, "ann"),
        ("e2", W + timedelta(seconds=30), "ann"),
        ("e3", W, "bob"),
        ("e4", W + minute, "ann"),
        ("e5", W + minute, "cid"),
    ]
    # The materialized view dropped the replay too: 3 events in the first minute, not 6.
    per_minute = store.query(
        "SELECT window_start, unique_visitors, events FROM unique_visitors_per_minute "
        "ORDER BY window_start"
    )
    assert per_minute == [
        {"window_start": W, "unique_visitors": 2, "events": 3},
        {"window_start": W + minute, "unique_visitors": 2, "events": 2},
    ]
    # Over both minutes, ann counts once: ann, bob, cid.
    both = store.query(
        "SELECT uniqExactMerge(visitors) AS visitors FROM unique_visitors_1m "
        f"WHERE window_start IN ('{W:%Y-%m-%d %H:%M:%S}', '{W + minute:%Y-%m-%d %H:%M:%S}')"
    )
    assert both == [{"visitors": 3}]


def test_server_store_sends_arrow_with_the_deduplication_token():
    client = FakeClickHouseClient()
    store = ServerStore(client, "clickstream")
    table = arrow_events([("e1", W, "ann")], 4)
    store.insert_arrow("events", table, dedup_token="q:4:0")
    [(name, rows, columns, settings)] = client.inserts
    assert (name, settings) == ("events", {"insert_deduplication_token": "q:4:0"})
    assert dict(zip(columns, rows[0], strict=True))["user_id"] == "ann"
    store.insert_arrow("events", table.slice(0, 0), dedup_token="q:5:0")  # nothing to send
    assert len(client.inserts) == 1


def test_query_returns_python_values(store):
    rows = store.query(
        "SELECT toUInt64(3) AS n, toInt32(-2) AS i, 'x' AS s, 1.5 AS f, "
        "toDateTime('2026-01-15 12:00:00', 'UTC') AS t, "
        "toDateTime64('2026-01-15 12:00:00.250', 3, 'UTC') AS t3, toDate('2026-01-15') AS d, "
        "CAST(NULL, 'Nullable(DateTime)') AS missing"
    )
    noon = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert rows == [
        {
            "n": 3,
            "i": -2,
            "s": "x",
            "f": 1.5,
            "t": noon,
            "t3": noon.replace(microsecond=250000),
            "d": noon.date(),
            "missing": None,
        }
    ]
    assert store.query("SELECT 1 AS one WHERE 0") == []


def test_open_store_picks_the_backend_from_the_url(tmp_path):
    store = open_store(f"chdb://{tmp_path}/ch", "clickstream")
    try:
        assert isinstance(store, EmbeddedStore) and store.path == f"{tmp_path}/ch"
    finally:
        store.close()
    with pytest.raises(ValueError, match="unsupported scheme 'ftp'"):
        open_store("ftp://host/x", "clickstream")


def test_server_url_becomes_client_arguments():
    assert connection_args("https://analyst:p%40ss@ch.example.com/metrics", "clickstream") == {
        "host": "ch.example.com",
        "port": 8443,
        "username": "analyst",
        "password": "p@ss",
        "database": "metrics",
        "secure": True,
    }
    assert connection_args("http://127.0.0.1:8123", "clickstream") == {
        "host": "127.0.0.1",
        "port": 8123,
        "username": "default",
        "password": "",
        "database": "clickstream",
        "secure": False,
    }


def test_server_store_passes_the_deduplication_token_and_utc_times():
    client = FakeClickHouseClient()
    store = ServerStore(client, "clickstream")
    naive = W.replace(tzinfo=None)
    store.insert("page_clicks_1m", ("window_start", "clicks"), [(naive, 3)], dedup_token="q:1")
    store.insert("page_clicks_1m", ("window_start", "clicks"), [], dedup_token="q:2")
    assert client.inserts == [
        (
            "page_clicks_1m",
            [[W, 3]],
            ["window_start", "clicks"],
            {"insert_deduplication_token": "q:1"},
        ),
    ]


def test_the_fake_server_refuses_a_second_call_while_one_is_in_progress():
    client = FakeClickHouseClient(call_seconds=0.2)
    first = threading.Thread(target=client.command, args=("SELECT sleep(0.2)",))
    first.start()
    while not client.commands:  # the first call is in progress once it is recorded
        pass
    with pytest.raises(DatabaseError, match=r"Code: 373\. .*\(SESSION_IS_LOCKED\)"):
        client.query("SELECT 1")
    first.join()
    assert client.commands == ["SELECT sleep(0.2)"]
    assert client.queries == []


def test_server_store_serialises_calls_from_many_threads():
    # Two sink threads and the progress listener share one store in the processor.
    client = FakeClickHouseClient(call_seconds=0.002, query_rows=[{"n": 1}])
    store = ServerStore(client, "clickstream")
    threads, rounds = 8, 10
    start = threading.Barrier(threads)
    errors: list[BaseException] = []
    answers: list[list[dict]] = []

    def work(worker: int) -> None:
        start.wait()
        try:
            for i in range(rounds):
                store.insert("t", ("w", "i"), [(worker, i)], dedup_token=f"{worker}:{i}")
                answers.append(store.query("SELECT 1 AS n"))
                store.command(f"OPTIMIZE TABLE t -- {worker}:{i}")
        except BaseException as error:
            errors.append(error)

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []
    assert len(client.inserts) == len(client.queries) == len(client.commands) == 80
    assert sorted(data[0] for _, data, _, _ in client.inserts) == [
        [w, i] for w in range(threads) for i in range(rounds)
    ]
    assert sorted(settings["insert_deduplication_token"] for *_, settings in client.inserts) == (
        sorted(f"{w}:{i}" for w in range(threads) for i in range(rounds))
    )
    assert answers == [[{"n": 1}]] * 80
    store.close()
    assert client.closed == 1


def test_server_store_connects_without_a_session(monkeypatch):
    # A session_id makes the server refuse overlapping calls; the store needs none.
    made: list[tuple[dict, FakeClickHouseClient]] = []

    def get_client(**kwargs):
        made.append((kwargs, FakeClickHouseClient()))
        return made[-1][1]

    monkeypatch.setattr(clickhouse_connect, "get_client", get_client)
    store = ServerStore.from_url("http://writer:pw@ch.internal:8123/metrics", "clickstream")
    server = {
        "host": "ch.internal",
        "port": 8123,
        "username": "writer",
        "password": "pw",
        "secure": False,
        "autogenerate_session_id": False,
    }
    assert [kwargs for kwargs, _ in made] == [server, {"database": "metrics", **server}]
    bootstrap, client = made[0][1], made[1][1]
    assert (bootstrap.commands, bootstrap.closed) == (["CREATE DATABASE IF NOT EXISTS metrics"], 1)
    assert (store.database, store._client) == ("metrics", client)


def test_server_store_passes_hostile_values_through_unchanged():
    client = FakeClickHouseClient({"rejected_events": REJECTED_COLUMNS})
    store = ServerStore(client, "clickstream")
    plus_two = datetime(2026, 1, 15, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    row = (
        "clicks",
        2**31 - 1,
        2**63 - 1,
        plus_two,
        "not_json",
        "'); DROP TABLE rejected_events; --\x00\n\\\u00e9\U0001f600",
        4_294_967_295,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        2**64 - 1,
    )
    token = "q:\u00e9'\n"
    store.insert("rejected_events", REJECTED_COLUMNS, [row], dedup_token=token)
    assert client.inserts == [
        (
            "rejected_events",
            [list(row)],
            list(REJECTED_COLUMNS),
            {"insert_deduplication_token": token},
        )
    ]
    sent = client.inserts[0][1][0][3]
    assert (sent, sent.utcoffset()) == (plus_two, timedelta(hours=2))


def test_the_fake_server_refuses_none_in_a_non_nullable_column():
    client = FakeClickHouseClient(
        {"rejected_events": REJECTED_COLUMNS, "pipeline_progress": ("query_name",)}
    )
    store = ServerStore(client, "clickstream")
    good = ["clicks", 0, 7, W, "not_json", "{", 1, "ab", 3]
    bad = [*good[:5], None, *good[6:]]
    with pytest.raises(
        DataError,
        match=r"^Invalid None value in non-Nullable column, column name: `raw_prefix`$",
    ):
        store.insert("rejected_events", REJECTED_COLUMNS, [good, bad])
    assert client.inserts == []
    # A Nullable column (watermark) takes None, as on the server.
    store.insert("pipeline_progress", ("query_name", "watermark"), [("clickstream", None)])
    assert client.inserts == [
        ("pipeline_progress", [["clickstream", None]], ["query_name", "watermark"], {})
    ]


def test_non_nullable_columns_are_read_from_the_migrated_tables(store):
    found = non_nullable_columns(store)
    assert sorted(found) == [
        "alerts",
        "data_gaps",
        "events",
        "funnel_1m",
        "page_clicks_1m",
        "page_events_1s",
        "pipeline_progress",
        "rejected_events",
        "schema_migrations",
        "session_activity",
        "sessions",
        "unique_visitors_1m",
    ]
    assert found["events"] == {
        "event_id",
        "event_time",
        "user_id",
        "page_url",
        "kafka_partition",
        "kafka_offset",
        "batch_id",
        "inserted_at",
        "agent_is_bot",
        "funnel_step",
    }
    # Only resolved_at may be NULL (an open alert has none).
    assert found["alerts"] == set(ALERTS_COLUMNS) - {"resolved_at"} | {"written_at"}
    assert found["unique_visitors_1m"] == {
        "window_start",
        "visitors",
        "visitors_without_bot_agent",
        "events",
    }
    # Every column of a closed session has a value.
    assert found["sessions"] == set(SESSIONS_COLUMNS)
    assert found["page_clicks_1m"] == {
        "window_start",
        "window_end",
        "page_url",
        "clicks",
        "batch_id",
        "query_id",
        "inserted_at",
    }
    assert found["pipeline_progress"] == {
        "query_name",
        "query_id",
        "run_id",
        "batch_id",
        "reported_at",
        "batch_time",
        "num_input_rows",
        "input_rows_per_second",
        "processed_rows_per_second",
        "batch_duration_ms",
        "rows_dropped_by_watermark",
        "state_rows",
        "kafka_lag",
        "counted",
        "duplicates_removed",
        "rejected",
    }
    # Not a column of the rejects table may be NULL, whichever columns it has.
    every = store.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'rejected_events'"
    )
    assert found["rejected_events"] == {r["name"] for r in every}
    assert found["schema_migrations"] == {"version", "name", "checksum", "applied_at"}


def test_events_keep_every_event_validation_accepts(store):
    """Validation accepts events up to MAX_EVENT_AGE old (89 days), and page_clicks_1m
    keeps their windows 90 days: events must keep them as long, or an old but valid
    event would be counted and yet missing from events (chDB drops an expired row at
    insert)."""
    old = W - timedelta(days=89)
    store.insert_arrow("events", arrow_events([("e-old", old, "ann")]), dedup_token="q:1:0")
    assert store.query("SELECT event_id, event_time FROM events") == [
        {"event_id": "e-old", "event_time": old}
    ]


def test_unique_visitors_last_counts_each_visitor_once_over_the_minutes_asked(store):
    # The view counts back from ClickHouse's now(): start well inside a minute, so the
    # minute cannot turn between the insert and the queries.
    if datetime.now(UTC).second >= 50:
        time.sleep(61 - datetime.now(UTC).second)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = [
        ("e1", now, "ann"),
        ("e2", now - timedelta(minutes=1), "ann"),
        ("e3", now - timedelta(minutes=1), "bob"),
        ("e4", now - timedelta(minutes=30), "cid"),
    ]
    store.insert_arrow("events", arrow_events(rows), dedup_token="q:1:0")

    def last(minutes: int) -> dict:
        return store.query(f"SELECT * FROM unique_visitors_last(minutes = {minutes})")[0]

    def visitors(minutes: int) -> tuple[int, int]:
        row = last(minutes)
        assert row["unique_visitors_without_bot_agents"] == row["unique_visitors"]  # no bots
        return row["unique_visitors"], row["events"]

    assert visitors(1) == (1, 1)  # this minute: ann
    assert visitors(2) == (2, 3)  # ann once, bob
    assert visitors(60) == (3, 4)
