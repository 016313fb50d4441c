"""Closing sessions: after each batch, the sessions the watermark has left behind get a row.

A session (the events of one session_id) is closed once the batch's watermark is more
than SESSION_IDLE_TIMEOUT past its last event. Spark drops every event older than the
watermark, so nothing can join a closed session any more: its row, computed here by
ClickHouse from `events` (app/sql/008_sessions_and_funnel.sql), is final.

Each batch closes the sessions whose last event falls between the previous batch's close
point and its own: [previous watermark - timeout, watermark - timeout). The pass runs
before the batch's progress row is written, and a replayed batch has the same watermark
(it is in the offset log) and the same previous one, so it closes the same sessions with
the same rows, under the same token: nothing is closed twice or skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.funnel import FUNNEL_STEPS, IN_PAGE_EVENT_TYPES
from app.settings import Settings
from app.storage.base import quote_string

SESSIONS_COLUMNS = (
    "session_id",
    "user_id",
    "session_start",
    "session_end",
    "duration_seconds",
    "events",
    "page_views",
    "bounce",
    "deepest_step",
    "deepest_step_name",
    "entry_page",
    "exit_page",
    "max_views_of_one_page",
    "abandoned_cart",
    "long_session",
    "repeated_views",
    "agent_is_bot",
    "is_bot",
    "bot_reason",
    "closed_at",
    "batch_id",
)
# The bot rules, in the order they are tried (the README lists them the same way).
BOT_REASONS = ("user_agent", "pages_per_minute", "constant_intervals", "no_cart_many_views")


@dataclass(frozen=True)
class SessionRules:
    """What closes a session, and what counts as a problem or a bot (README: Insights)."""

    idle_timeout_seconds: float
    long_session_seconds: float
    repeated_views: int
    bot_max_pages_per_minute: float
    bot_min_pages: int
    bot_max_interval_cv: float
    bot_min_views_without_cart: int


def rules_from(settings: Settings) -> SessionRules:
    return SessionRules(
        idle_timeout_seconds=settings.session_idle_timeout,
        long_session_seconds=settings.long_session_duration,
        repeated_views=settings.repeated_views,
        bot_max_pages_per_minute=settings.bot_max_pages_per_minute,
        bot_min_pages=settings.bot_min_pages,
        bot_max_interval_cv=settings.bot_max_interval_cv,
        bot_min_views_without_cart=settings.bot_min_views_without_cart,
    )


def _ms(epoch_ms: int) -> str:
    return f"fromUnixTimestamp64Milli(toInt64({int(epoch_ms)}), 'UTC')"


def _closing(from_ms: int, to_ms: int) -> str:
    """The sessions with an event in [from_ms, to_ms) and none later: those to close."""
    return f"""
    candidates AS (
        SELECT DISTINCT assumeNotNull(session_id) AS session_id FROM events
        WHERE event_time >= {_ms(from_ms)} AND event_time < {_ms(to_ms)}
          AND session_id IS NOT NULL
    ),
    closing AS (
        SELECT session_id, min(first_seen) AS first_seen, max(last_seen) AS last_seen
        FROM session_activity
        WHERE session_id IN (SELECT session_id FROM candidates)
        GROUP BY session_id
        HAVING last_seen < {_ms(to_ms)}
    )"""


def closing_sql(from_ms: int, to_ms: int) -> str:
    """How many sessions close, and the first event time among them (epoch ms)."""
    return f"""
WITH {_closing(from_ms, to_ms)}
SELECT count() AS sessions, toInt64(toUnixTimestamp64Milli(min(first_seen))) AS first_ms
FROM closing
"""


def close_sessions_sql(
    rules: SessionRules,
    from_ms: int,
    to_ms: int,
    first_ms: int,
    closed_at_ms: int,
    batch_id: int,
    token: str,
) -> str:
    """INSERT of every session whose last event is in [from_ms, to_ms) and none later.

    first_ms (from `closing_sql`) bounds how far back their events are read."""
    in_page = ", ".join(quote_string(t) for t in IN_PAGE_EVENT_TYPES)
    steps = "[" + ", ".join(quote_string(s) for s in ("none", *FUNNEL_STEPS)) + "]"
    order = "(event_time, kafka_partition, kafka_offset)"
    return f"""
INSERT INTO sessions ({", ".join(SESSIONS_COLUMNS)})
SETTINGS insert_deduplication_token = {quote_string(token)}
WITH {_closing(from_ms, to_ms)}
SELECT
    session_id, user_id, session_start, session_end, duration_seconds, events, page_views,
    page_views <= 1 AS bounce,
    deepest_step,
    {steps}[deepest_step + 1] AS deepest_step_name,
    entry_page, exit_page, max_views_of_one_page,
    deepest_step IN (4, 5) AS abandoned_cart,
    duration_seconds >= {rules.long_session_seconds} AS long_session,
    max_views_of_one_page >= {rules.repeated_views} AS repeated_views,
    agent_is_bot,
    bot_reason != '' AS is_bot,
    multiIf(
        agent_is_bot = 1, 'user_agent',
        page_views >= {rules.bot_min_pages}
            AND page_views * 60 > {rules.bot_max_pages_per_minute} * duration_seconds,
            'pages_per_minute',
        events >= {rules.bot_min_pages}
            AND (mean_gap = 0 OR gap_sd < {rules.bot_max_interval_cv} * mean_gap),
            'constant_intervals',
        page_views >= {rules.bot_min_views_without_cart} AND deepest_step < 4,
            'no_cart_many_views',
        '') AS bot_reason,
    {_ms(closed_at_ms)} AS closed_at,
    toUInt64({batch_id}) AS batch_id
FROM
(
    SELECT
        assumeNotNull(session_id) AS session_id,
        argMin(user_id, {order}) AS user_id,
        min(event_time) AS session_start,
        max(event_time) AS session_end,
        (toUnixTimestamp64Milli(session_end) - toUnixTimestamp64Milli(session_start)) / 1000
            AS duration_seconds,
        toUInt32(count()) AS events,
        toUInt32(countIf(ifNull(event_type, '') NOT IN ({in_page}))) AS page_views,
        max(funnel_step) AS deepest_step,
        argMin(page_url, {order}) AS entry_page,
        argMax(page_url, {order}) AS exit_page,
        toUInt32(arrayMax(arrayConcat([0], mapValues(sumMapIf(
            map(page_url, toUInt32(1)), ifNull(event_type, '') NOT IN ({in_page}))))))
            AS max_views_of_one_page,
        max(agent_is_bot) AS agent_is_bot,
        arrayPopFront(arrayDifference(
            arraySort(groupArray(toFloat64(toUnixTimestamp64Milli(event_time)))))) AS gaps,
        if(empty(gaps), 0, arrayAvg(gaps)) AS mean_gap,
        if(empty(gaps), 0, sqrt(arrayAvg(arrayMap(g -> (g - mean_gap) * (g - mean_gap), gaps))))
            AS gap_sd
    FROM events
    WHERE session_id IN (SELECT session_id FROM closing)
      AND event_time >= {_ms(first_ms)}
      AND event_time < {_ms(to_ms)}
    GROUP BY session_id
)
"""
