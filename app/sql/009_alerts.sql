-- Alerts (app/alerts). The processor judges page_drop, rejects_flood and pipeline_behind
-- after each batch; the notifier judges pipeline_stalled. Exact definitions are in the
-- README ("Alerts").
--
-- One row per judgement of an open alert: the row that opens it (state firing), one per
-- batch while it fires (last_seen and value move on; the baseline stays frozen), and the
-- row that resolves it. The newest row of an alert_id is the alert (alerts_latest). The
-- id is rule:subject:first_seen, so a replayed batch writes the same ids, and its insert,
-- under the batch's token (<query>:<batch>:alerts), is dropped.

CREATE TABLE IF NOT EXISTS alerts
(
    alert_id String,
    rule LowCardinality(String),
    subject String,
    state LowCardinality(String),
    value Float64,
    baseline Float64,
    threshold Float64,
    first_seen DateTime64(3, 'UTC'),
    last_seen DateTime64(3, 'UTC'),
    resolved_at Nullable(DateTime64(3, 'UTC')),
    message String,
    batch_id Int64,
    query_id String,
    written_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(last_seen)
ORDER BY alert_id
TTL toDateTime(first_seen) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Each alert as it stands now: its newest row (the resolving row is the newest one of a
-- resolved alert: it has the latest last_seen).
CREATE OR REPLACE VIEW alerts_latest AS
SELECT
    alert_id, rule, subject, state, value, baseline, threshold, first_seen, last_seen,
    resolved_at, message,
    dateDiff('millisecond', first_seen, last_seen) / 1000 AS duration_seconds
FROM alerts
ORDER BY alert_id, last_seen DESC
LIMIT 1 BY alert_id;

-- Events per second and page, from events (the job's one read), for page_drop: a batch's
-- judgement reads a few hundred rows of the watched pages instead of scanning minutes of
-- events. Its own deduplication window, so an insert into events dropped as a replay is
-- dropped here too. Kept a day: the rule looks back minutes.
CREATE TABLE IF NOT EXISTS page_events_1s
(
    page_url String,
    second DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (page_url, second)
TTL second + INTERVAL 1 DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS page_events_1s_mv TO page_events_1s AS
SELECT page_url, toStartOfSecond(event_time) AS second, toUInt64(count()) AS events
FROM events
GROUP BY page_url, second;

-- What fires now, oldest first.
CREATE OR REPLACE VIEW open_alerts AS
SELECT *
FROM alerts_latest
WHERE state = 'firing'
ORDER BY first_seen;
