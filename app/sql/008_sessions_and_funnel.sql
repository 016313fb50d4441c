-- Insights, part three: the funnel, sessions and bots, all derived from events (the job
-- reads Kafka once; everything here is ClickHouse's work on what the job inserted).
--
-- Exact definitions are in the README ("Insights"). In short:
--   * funnel_step: 1 home, 2 category, 3 product, 4 cart, 5 checkout, 6 purchase, 0 other
--     (app/funnel.py is the same function for the producer's ground truth; a test checks
--     that the two agree).
--   * A session is the events of one session_id (not NULL, not blank). It is closed, and gets its row in
--     sessions, once the job's watermark is more than SESSION_IDLE_TIMEOUT past its last
--     event: no event older than the watermark is accepted any more, so a closed session's
--     events are final. The job's sink writes the rows (app/processor/sessions.py).
--   * funnel_1m: per minute of event time, the sessions with an event at a step or later.

ALTER TABLE events ADD COLUMN IF NOT EXISTS funnel_step UInt8 MATERIALIZED multiIf(
    ifNull(event_type, '') = 'purchase', 6,
    ifNull(event_type, '') = 'checkout' OR page_url = '/checkout', 5,
    ifNull(event_type, '') = 'add_to_cart' OR page_url = '/cart', 4,
    startsWith(page_url, '/products/'), 3,
    startsWith(page_url, '/category/'), 2,
    page_url = '/', 1,
    0);

-- Unique visitors again, now also without the visitors whose agent is a known crawler.
ALTER TABLE unique_visitors_1m
    ADD COLUMN IF NOT EXISTS visitors_without_bot_agent AggregateFunction(uniqExact, String);

DROP VIEW IF EXISTS unique_visitors_1m_mv;

CREATE MATERIALIZED VIEW unique_visitors_1m_mv TO unique_visitors_1m AS
SELECT
    toStartOfMinute(event_time) AS window_start,
    uniqExactState(user_id) AS visitors,
    uniqExactStateIf(user_id, agent_is_bot = 0) AS visitors_without_bot_agent,
    toUInt64(count()) AS events
FROM events
GROUP BY window_start;

CREATE OR REPLACE VIEW unique_visitors_per_minute AS
SELECT
    window_start,
    uniqExactMerge(visitors) AS unique_visitors,
    uniqExactMerge(visitors_without_bot_agent) AS unique_visitors_without_bot_agents,
    sum(events) AS events
FROM unique_visitors_1m
GROUP BY window_start;

CREATE OR REPLACE VIEW unique_visitors_last AS
SELECT
    uniqExactMerge(visitors) AS unique_visitors,
    uniqExactMerge(visitors_without_bot_agent) AS unique_visitors_without_bot_agents,
    sum(events) AS events
FROM unique_visitors_1m
WHERE window_start >= toStartOfMinute(now()) - toIntervalMinute({minutes:UInt32} - 1);

-- Per session: when it was first and last seen, kept up to date by every insert into
-- events. The sink finds the sessions to close here, and how far back their events go.
-- min and max give the same answer however often an event is inserted: no token needed.
CREATE TABLE session_activity
(
    session_id  String,
    first_seen  SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen   SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY session_id
TTL toDateTime(last_seen) + INTERVAL 90 DAY;

CREATE MATERIALIZED VIEW session_activity_mv TO session_activity AS
SELECT
    assumeNotNull(session_id) AS session_id,
    min(event_time) AS first_seen,
    max(event_time) AS last_seen
FROM events
WHERE notEmpty(trimBoth(ifNull(session_id, '')))
GROUP BY session_id;

-- The funnel per minute of event time: for each step, the distinct sessions with an event
-- at that step or a later one in that minute, as mergeable states (the same set however
-- often an event is inserted). Merged over a range, a session counts once per step.
CREATE TABLE funnel_1m
(
    window_start  DateTime('UTC'),
    step          UInt8,
    agent_is_bot  UInt8,
    sessions      AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, step, agent_is_bot)
TTL window_start + INTERVAL 90 DAY;

CREATE MATERIALIZED VIEW funnel_1m_mv TO funnel_1m AS
SELECT
    toStartOfMinute(event_time) AS window_start,
    toUInt8(arrayJoin(range(1, funnel_step + 1))) AS step,
    agent_is_bot,
    uniqExactState(assumeNotNull(session_id)) AS sessions
FROM events
WHERE notEmpty(trimBoth(ifNull(session_id, ''))) AND funnel_step > 0
GROUP BY window_start, step, agent_is_bot;

-- One row per minute: the sessions at each step (bots by agent included).
CREATE VIEW funnel_per_minute AS
SELECT
    window_start,
    uniqExactMergeIf(sessions, step = 1) AS home,
    uniqExactMergeIf(sessions, step = 2) AS category,
    uniqExactMergeIf(sessions, step = 3) AS product,
    uniqExactMergeIf(sessions, step = 4) AS cart,
    uniqExactMergeIf(sessions, step = 5) AS checkout,
    uniqExactMergeIf(sessions, step = 6) AS purchase
FROM funnel_1m
GROUP BY window_start;

-- The funnel over the last N minutes, one row per step, with the share of the previous
-- step's sessions that reached it: SELECT * FROM funnel_last(minutes = 60, bots = 0).
-- bots = 0 leaves out sessions whose agent is a known crawler; bots = 1 keeps them.
CREATE VIEW funnel_last AS
SELECT
    step,
    ['home', 'category', 'product', 'cart', 'checkout', 'purchase'][step] AS step_name,
    sessions,
    if(step = 1, 1.0, sessions / nullIf(lagInFrame(sessions) OVER (ORDER BY step), 0))
        AS conversion_from_previous
FROM
(
    SELECT steps.step AS step, ifNull(reached.sessions, 0) AS sessions
    FROM (SELECT toUInt8(arrayJoin([1, 2, 3, 4, 5, 6])) AS step) AS steps
    LEFT JOIN
    (
        SELECT step, uniqExactMerge(sessions) AS sessions
        FROM funnel_1m
        WHERE window_start >= toStartOfMinute(now()) - toIntervalMinute({minutes:UInt32} - 1)
          AND agent_is_bot <= {bots:UInt8}
        GROUP BY step
    ) AS reached ON reached.step = steps.step
)
ORDER BY step;

-- Closed sessions. A session_id that sends again after its session closed (only an event
-- stamped later than the close can be accepted) reopens it: its row is written again when
-- it closes again, and the newer row replaces the older (version: closed_at). Read with
-- FINAL, or through the views below.
CREATE TABLE sessions
(
    session_id              String,
    user_id                 String,
    session_start           DateTime64(3, 'UTC'),
    session_end             DateTime64(3, 'UTC'),
    duration_seconds        Float64,
    events                  UInt32,
    page_views              UInt32,
    bounce                  UInt8,
    deepest_step            UInt8,
    deepest_step_name       LowCardinality(String),
    entry_page              String,
    exit_page               String,
    max_views_of_one_page   UInt32,
    abandoned_cart          UInt8,
    long_session            UInt8,
    repeated_views          UInt8,
    agent_is_bot            UInt8,
    is_bot                  UInt8,
    bot_reason              LowCardinality(String),
    closed_at               DateTime64(3, 'UTC'),
    batch_id                UInt64
)
ENGINE = ReplacingMergeTree(closed_at)
PARTITION BY toYYYYMM(session_start)
ORDER BY session_id
TTL toDateTime(session_start) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Sessions that started in each minute, and how they went.
CREATE VIEW sessions_per_minute AS
SELECT
    toStartOfMinute(session_start) AS window_start,
    count() AS sessions,
    sum(bounce) AS bounces,
    round(avg(bounce), 4) AS bounce_rate,
    round(avg(duration_seconds), 1) AS avg_duration_seconds,
    sum(abandoned_cart) AS abandoned_carts,
    sum(long_session) AS long_sessions,
    sum(repeated_views) AS repeated_views,
    sum(is_bot) AS bot_sessions
FROM sessions FINAL
GROUP BY window_start;

-- Sessions with a problem (README: Insights, for each flag).
CREATE VIEW problem_sessions AS
SELECT *
FROM sessions FINAL
WHERE abandoned_cart = 1 OR long_session = 1 OR repeated_views = 1;

-- Sessions flagged as bots, with the first rule that flagged each.
CREATE VIEW bot_sessions AS
SELECT *
FROM sessions FINAL
WHERE is_bot = 1;

-- Users with at least one bot session: how many, and why.
CREATE VIEW bots AS
SELECT
    user_id,
    count() AS bot_sessions,
    groupUniqArray(bot_reason) AS reasons,
    min(session_start) AS first_seen,
    max(session_end) AS last_seen
FROM sessions FINAL
WHERE is_bot = 1
GROUP BY user_id;

-- Sessions with an event in the last 5 minutes (wall clock), those of crawler agents, and
-- those minutes' events (all of them, with a session or not) and crawler agents' events.
CREATE VIEW active_sessions AS
SELECT
    uniqExact(session_id) AS active_sessions,
    uniqExactIf(session_id, agent_is_bot = 1) AS active_bot_agent_sessions,
    count() AS events,
    countIf(agent_is_bot = 1) AS bot_agent_events
FROM events
WHERE event_time >= now64(3) - INTERVAL 5 MINUTE;
