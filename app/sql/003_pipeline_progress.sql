-- One row per micro-batch of each streaming query, from Spark's progress events:
-- how fast data comes in and is processed, how long a batch takes, how many rows the
-- watermark dropped as too late, and how far the query is behind the end of the topic.
CREATE TABLE IF NOT EXISTS pipeline_progress
(
    query_name                 LowCardinality(String),
    query_id                   String,
    run_id                     String,
    batch_id                   UInt64,
    reported_at                DateTime64(3, 'UTC'),
    num_input_rows             UInt64,
    input_rows_per_second      Float64,
    processed_rows_per_second  Float64,
    batch_duration_ms          UInt64,
    rows_dropped_by_watermark  UInt64,
    state_rows                 UInt64,
    kafka_lag                  UInt64,
    watermark                  Nullable(DateTime64(3, 'UTC'))
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(reported_at)
ORDER BY (query_name, reported_at, batch_id)
TTL toDateTime(reported_at) + INTERVAL 30 DAY
