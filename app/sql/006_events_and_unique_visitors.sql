-- Insights, part one: the raw stream and unique visitors, from the job's one read.
--
-- events holds every valid, deduplicated event once, written by the job's micro-batch
-- sink from the batch it already holds (no second read of Kafka), in chunks each with
-- its own deduplication token, so a replayed batch lands once. unique_visitors_1m is
-- fed from events by a materialized view; its own deduplication window makes a replayed
-- insert into events, dropped there, dropped here too (ClickHouse derives the view's
-- token from the insert's).

CREATE TABLE events
(
    event_id         String,
    event_time       DateTime64(3, 'UTC'),
    user_id          String,
    session_id       Nullable(String),
    page_url         LowCardinality(String),
    event_type       LowCardinality(Nullable(String)),
    referrer         Nullable(String),
    user_agent       Nullable(String),
    device           LowCardinality(Nullable(String)),
    country          LowCardinality(Nullable(String)),
    schema_version   Nullable(Int64),
    kafka_partition  Int32,
    kafka_offset     Int64,
    batch_id         UInt64,
    inserted_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
-- By month of an event time validation holds to the last 89 days: an insert touches at
-- most 4 partitions, as page_clicks_1m. Kept 90 days, as page_clicks_1m: a shorter TTL
-- would drop an old but valid event at insert, counted and yet not here.
PARTITION BY toYYYYMM(event_time)
ORDER BY (event_time, page_url)
TTL toDateTime(event_time) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Unique visitors (distinct user_id) per minute of event time, as mergeable states:
-- uniqExactMerge over any set of minutes gives the exact number of distinct visitors
-- in all of them together, without reading events again. Exact, not a sketch: the state
-- keeps every distinct user_id of its minute.
CREATE TABLE unique_visitors_1m
(
    window_start  DateTime('UTC'),
    visitors      AggregateFunction(uniqExact, String),
    events        SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY window_start
TTL window_start + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW unique_visitors_1m_mv TO unique_visitors_1m AS
SELECT
    toStartOfMinute(event_time) AS window_start,
    uniqExactState(user_id) AS visitors,
    toUInt64(count()) AS events
FROM events
GROUP BY window_start;

-- One row per minute: its distinct visitors and its events.
CREATE VIEW unique_visitors_per_minute AS
SELECT
    window_start,
    uniqExactMerge(visitors) AS unique_visitors,
    sum(events) AS events
FROM unique_visitors_1m
GROUP BY window_start;

-- Distinct visitors over the last N minutes of event time, counted once however many
-- minutes they visited in: SELECT * FROM unique_visitors_last(minutes = 60).
CREATE VIEW unique_visitors_last AS
SELECT
    uniqExactMerge(visitors) AS unique_visitors,
    sum(events) AS events
FROM unique_visitors_1m
WHERE window_start >= toStartOfMinute(now()) - toIntervalMinute({minutes:UInt32} - 1);
