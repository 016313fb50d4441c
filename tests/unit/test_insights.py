"""Sessions, funnel and bots on the real ClickHouse engine (chDB), from hand-made events.

Every expected value is worked out by hand from the events below; the integration tests
check the same outputs against the producer's ground truth.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.funnel import funnel_step
from app.processor.batch import EVENTS_COLUMNS
from app.processor.job import set_events_ttl
from app.processor.sessions import (
    BOT_REASONS,
    SessionRules,
    close_sessions_sql,
    closing_sql,
)
from app.storage import bot_agents

# A day ago, on the hour: inside every table's TTL whenever the tests run (a fixed date
# would fall out of the 90 days one day, and chDB drops expired rows at insert).
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
RULES = SessionRules(
    idle_timeout_seconds=30,
    long_session_seconds=600,
    repeated_views=3,
    bot_max_pages_per_minute=30,
    bot_min_pages=10,
    bot_max_interval_cv=0.1,
    bot_min_views_without_cart=20,
)
SQL = Path(__file__).parents[2] / "app" / "sql"


class Events:
    """Events of sessions, one Kafka partition, offsets in the order added."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, session, seconds, page, kind="page_view", agent=BROWSER, user="u1"):
        offset = len(self.rows)
        time = T0 + timedelta(seconds=seconds)
        kafka = (0, offset, 1)  # partition, offset, batch_id
        event = (f"e{offset}", time, user, session, page, kind, None, agent, "desktop", "US", 1)
        self.rows.append((*event, *kafka))

    def insert(self, store, token: str) -> None:
        store.insert("events", EVENTS_COLUMNS, self.rows, dedup_token=token)
        self.rows = []


def epoch_ms(seconds: float) -> int:
    return int((T0 + timedelta(seconds=seconds)).timestamp() * 1000)


def close(store, from_s: float, to_s: float, batch_id: int) -> int:
    """The sink's pass for a batch whose close point moved from from_s to to_s."""
    summary = store.query(closing_sql(epoch_ms(from_s), epoch_ms(to_s)))[0]
    if summary["sessions"]:
        store.command(
            close_sessions_sql(
                RULES,
                epoch_ms(from_s),
                epoch_ms(to_s),
                summary["first_ms"],
                epoch_ms(to_s + RULES.idle_timeout_seconds),
                batch_id,
                f"q:{batch_id}:sessions",
            )
        )
    return summary["sessions"]


def sessions(store) -> dict[str, dict]:
    rows = store.query("SELECT * FROM sessions FINAL ORDER BY session_id")
    return {r.pop("session_id"): r for r in rows}


def test_funnel_step_in_clickhouse_is_the_producers(store):
    cases = [
        ("/", "page_view"),
        ("/", None),
        ("/", "click"),
        ("/category/books", "page_view"),
        ("/products/1234", "page_view"),
        ("/products/1234", "add_to_cart"),
        ("/cart", "page_view"),
        ("/cart", None),
        ("/checkout", "checkout"),
        ("/checkout", "page_view"),
        ("/checkout/confirmation", "purchase"),
        ("/help", "purchase"),
        ("/search", "page_view"),
        ("/deals", None),
        ("/category", "page_view"),
        ("/productsX", "page_view"),
    ]
    events = Events()
    for page, kind in cases:
        events.add("s", 0, page, kind)
    events.insert(store, "q:1:0")
    got = store.query("SELECT funnel_step FROM events ORDER BY kafka_offset")
    assert [r["funnel_step"] for r in got] == [funnel_step(p, k) for p, k in cases]
    assert [funnel_step(p, k) for p, k in cases] == [1, 1, 1, 2, 3, 4, 4, 4, 5, 5, 6, 6, 0, 0, 0, 0]


def test_the_bot_agent_migration_is_the_pinned_list():
    generated = bot_agents.migration_sql()
    assert (SQL / "007_bot_agents.sql").read_text() == generated
    assert len(bot_agents.patterns()) == 1504


def test_agent_is_bot_follows_the_crawler_list(store):
    agents = [
        BROWSER,
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "curl/8.5.0",
        "python-requests/2.32.3",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0",
        None,
        "",
    ]
    events = Events()
    for agent in agents:
        events.add("s", 0, "/", agent=agent)
    events.insert(store, "q:1:0")
    got = store.query("SELECT agent_is_bot FROM events ORDER BY kafka_offset")
    assert [r["agent_is_bot"] for r in got] == [0, 1, 1, 1, 1, 0, 0]
    # The package's own matcher agrees on every agent ClickHouse saw.
    from crawleruseragents import is_crawler

    assert [int(is_crawler(a or "")) for a in agents] == [0, 1, 1, 1, 1, 0, 0]


def test_a_session_closes_once_with_every_column(store):
    events = Events()
    # A buyer's path to the cart, with a repeated product page, then gone.
    events.add("buyer", 0, "/")
    events.add("buyer", 10, "/category/books")
    events.add("buyer", 20, "/products/1")
    events.add("buyer", 25, "/products/1", "click")
    events.add("buyer", 30, "/products/1")
    events.add("buyer", 31, "/products/1", "add_to_cart")
    events.add("buyer", 32, "/cart")
    events.add("buyer", 40, "/products/1")
    # One page, then gone: a bounce.
    events.add("bouncer", 5, "/help", None, user="u2")
    # Still active at the close point: not closed.
    events.add("stayer", 5, "/", user="u3")
    events.add("stayer", 80, "/", user="u3")
    events.insert(store, "q:1:0")

    # Watermark 100 s: close point 70 s. buyer (last 40) and bouncer (last 5) close.
    assert close(store, -30, 70, batch_id=1) == 2
    got = sessions(store)
    assert set(got) == {"buyer", "bouncer"}
    assert got["buyer"] == {
        "user_id": "u1",
        "session_start": T0,
        "session_end": T0 + timedelta(seconds=40),
        "duration_seconds": 40.0,
        "events": 8,
        "page_views": 6,
        "bounce": 0,
        "deepest_step": 4,
        "deepest_step_name": "cart",
        "entry_page": "/",
        "exit_page": "/products/1",
        "max_views_of_one_page": 3,
        "abandoned_cart": 1,
        "long_session": 0,
        "repeated_views": 1,
        "agent_is_bot": 0,
        "is_bot": 0,
        "bot_reason": "",
        "closed_at": T0 + timedelta(seconds=100),
        "batch_id": 1,
    }
    assert got["bouncer"]["bounce"] == 1 and got["bouncer"]["deepest_step_name"] == "none"
    assert got["bouncer"]["duration_seconds"] == 0.0

    # The same batch again (a replay): the same token, nothing new.
    assert close(store, -30, 70, batch_id=1) == 2
    assert store.query("SELECT count() AS n FROM sessions") == [{"n": 2}]
    # The next batch moves the close point on: only stayer's last event is newly behind.
    assert close(store, 70, 120, batch_id=2) == 1
    assert set(sessions(store)) == {"buyer", "bouncer", "stayer"}
    assert store.query("SELECT count() AS n FROM sessions") == [{"n": 3}]


def test_a_purchase_is_no_abandoned_cart_and_a_long_session_is_flagged(store):
    events = Events()
    for second, page, kind in [
        (0, "/products/2", "page_view"),
        (1, "/products/2", "add_to_cart"),
        (2, "/cart", "page_view"),
        (3, "/checkout", "checkout"),
        (700, "/checkout/confirmation", "purchase"),
    ]:
        events.add("paid", second, page, kind)
    events.insert(store, "q:1:0")
    assert close(store, -30, 800, batch_id=1) == 1
    paid = sessions(store)["paid"]
    assert (paid["deepest_step_name"], paid["abandoned_cart"]) == ("purchase", 0)
    assert (paid["duration_seconds"], paid["long_session"]) == (700.0, 1)
    assert (paid["entry_page"], paid["exit_page"]) == ("/products/2", "/checkout/confirmation")


@pytest.mark.parametrize(
    ("name", "times", "pages", "agent", "reason"),
    [
        # A crawler's agent, whatever it does.
        ("agent", [0], ["/"], "curl/8.5.0", "user_agent"),
        # 12 pages in 22 s: 32.7 a minute, above 30.
        ("fast", [0, 1, 3, 6, 8, 9, 12, 15, 16, 19, 20, 22], None, BROWSER, "pages_per_minute"),
        # 10 events 5 s apart, give or take 0.1 s: the gaps hardly vary.
        (
            "metronome",
            [5 * i + (0.1 if i % 2 else 0) for i in range(10)],
            None,
            BROWSER,
            "constant_intervals",
        ),
        # 20 product pages over 20 minutes, at uneven gaps, and never a cart.
        ("reader", [i * 60 + (i % 3) * 7 for i in range(20)], None, BROWSER, "no_cart_many_views"),
        # 9 pages fast: too few to judge the pace.
        ("short", [0, 1, 2, 3, 4, 5, 6, 7, 8], None, BROWSER, ""),
    ],
)
def test_each_bot_rule_flags_the_session_with_its_reason(store, name, times, pages, agent, reason):
    events = Events()
    for i, second in enumerate(times):
        page = pages[i] if pages else f"/products/{1000 + i}"
        events.add(name, second, page, agent=agent)
    events.insert(store, "q:1:0")
    assert close(store, -30, times[-1] + 1, batch_id=1) == 1
    row = sessions(store)[name]
    assert (row["bot_reason"], row["is_bot"]) == (reason, int(reason != ""))


def test_a_session_that_sends_again_after_closing_is_replaced_when_it_closes_again(store):
    events = Events()
    events.add("again", 0, "/")
    events.insert(store, "q:1:0")
    assert close(store, -30, 50, batch_id=1) == 1
    # Only an event stamped after the close point can still be accepted.
    events.add("again", 90, "/cart")
    events.insert(store, "q:2:0")
    assert close(store, 50, 150, batch_id=2) == 1
    again = sessions(store)["again"]
    assert (again["events"], again["deepest_step_name"], again["duration_seconds"]) == (
        2,
        "cart",
        90.0,
    )


def test_the_funnel_counts_sessions_at_a_step_or_later_once_per_range(store):
    events = Events()
    events.add("a", 0, "/")
    events.add("a", 1, "/products/1")  # a: home, category, product (skips category: passed)
    events.add("b", 2, "/products/1", "add_to_cart")  # b: up to cart
    events.add("b", 61, "/checkout", "checkout")  # b, next minute: up to checkout
    events.add("c", 3, "/help")  # c: outside the funnel
    events.add("d", 4, "/", agent="curl/8.5.0")  # d: a crawler at home
    events.add(None, 5, "/")  # no session: in no funnel
    events.add(" ", 6, "/")  # a blank session: none either
    events.insert(store, "q:1:0")
    rows = store.query("SELECT * FROM funnel_per_minute ORDER BY window_start")
    assert [tuple(r.values())[1:] for r in rows] == [(3, 2, 2, 1, 0, 0), (1, 1, 1, 1, 1, 0)]
    merged = store.query(
        "SELECT uniqExactMergeIf(sessions, step = 4) AS cart, "
        "uniqExactMergeIf(sessions, step = 1 AND agent_is_bot = 0) AS home_no_bots "
        "FROM funnel_1m"
    )
    assert merged == [{"cart": 1, "home_no_bots": 2}]
    # Nor are they sessions, to close or to count.
    assert store.query("SELECT session_id FROM session_activity ORDER BY session_id") == [
        {"session_id": s} for s in "abcd"
    ]


def test_every_sessions_column_is_computed_by_the_close_pass():
    sql = close_sessions_sql(RULES, 0, 1, 0, 2, 3, "t")
    listed = re.search(r"INSERT INTO sessions \(([^)]*)\)", sql).group(1).split(", ")
    created = (SQL / "008_sessions_and_funnel.sql").read_text()
    table = created[created.index("CREATE TABLE sessions") : created.index("ENGINE = Replacing")]
    declared = re.findall(r"^\s{4}(\w+)\s+\w", table, flags=re.MULTILINE)
    assert listed == declared


def test_the_events_ttl_follows_the_setting_and_is_set_once(store):
    def ttl() -> str:
        engine = store.query(
            "SELECT engine_full FROM system.tables WHERE database = currentDatabase() "
            "AND name = 'events'"
        )[0]["engine_full"]
        return re.search(r"TTL (.*?) SETTINGS", engine).group(1)

    assert ttl() == "toDateTime(event_time) + toIntervalDay(90)"
    commands: list[str] = []

    class Recording:
        def query(self, sql):
            return store.query(sql)

        def command(self, sql):
            commands.append(sql)
            store.command(sql)

    set_events_ttl(Recording(), 90)
    assert commands == []  # already so: no ALTER
    set_events_ttl(Recording(), 120)
    assert ttl() == "toDateTime(event_time) + toIntervalDay(120)"
    set_events_ttl(Recording(), 120)
    assert len(commands) == 1


def test_the_bot_reasons_are_documented_and_applied_in_one_order():
    readme = (SQL.parents[1] / "README.md").read_text()
    table = readme[readme.index("- **Bots**") :]
    table = table[: table.index("\n\n", table.index("| reason |"))]
    assert re.findall(r"^\s*\| `(\w+)` \|", table, flags=re.MULTILINE) == list(BOT_REASONS)
    sql = close_sessions_sql(RULES, 0, 1, 0, 2, 3, "t")
    named = [name for name in re.findall(r"'(\w+)'", sql) if name in BOT_REASONS]
    assert named == list(BOT_REASONS)
