-- Clicks per page per tumbling window, as the Spark job emits them.
--
-- The job runs in `update` output mode: every micro-batch re-emits the full running count
-- of each (window_start, page_url) it touched. ReplacingMergeTree keeps, per key, the row
-- with the highest batch_id, i.e. the newest count. Readers use FINAL or argMax (see the
-- page_clicks_latest view) so they never see a superseded count before a merge.
-- A batch replayed after a crash carries the same insert_deduplication_token and is
-- dropped by the server (non_replicated_deduplication_window), so nothing counts twice.
CREATE TABLE IF NOT EXISTS page_clicks_1m
(
    window_start DateTime('UTC'),
    window_end   DateTime('UTC'),
    page_url     LowCardinality(String),
    clicks       UInt64,
    batch_id     UInt64,
    query_id     String,
    inserted_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(batch_id)
PARTITION BY toDate(window_start)
ORDER BY (window_start, page_url)
TTL window_start + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 10000
