-- One read, exact outputs (replaces the tables of 001-003 and the views of 004).
--
-- The job now reads the topic once and writes every table from one micro-batch, under
-- one deduplication token per batch. What changed, and why:
--   * No client-controlled value decides a partition any more. page_clicks_1m is
--     partitioned by month of the window (event times are validated to the last
--     MAX_EVENT_AGE, at most 89 days, so one insert touches at most 4 partitions);
--     rejected_events and pipeline_progress by the pipeline's own clock. An insert can
--     no longer exceed max_partitions_per_insert_block and loop on replay.
--   * rejected_events keeps a bounded prefix of the message, its length and SHA-256
--     (never NULL), not the whole message.
--   * pipeline_progress has one row per batch (a replay replaces it) and the batch's
--     accounting: read = counted + duplicates_removed + rows_dropped_by_watermark + rejected.
-- Upgrading from 001-004: the old tables are dropped and the processor's checkpoint
-- folder is new (CHECKPOINT_DIR/clickstream), so the counts are rebuilt from what Kafka
-- still holds (STARTING_OFFSETS=earliest). Export older windows first if you need them.

DROP VIEW IF EXISTS page_clicks_latest;
DROP VIEW IF EXISTS top_pages;
DROP VIEW IF EXISTS rejected_events_by_reason;
DROP VIEW IF EXISTS pipeline_health;
DROP TABLE IF EXISTS page_clicks_1m;
DROP TABLE IF EXISTS rejected_events;
DROP TABLE IF EXISTS pipeline_progress;

-- Clicks per page per tumbling window. Each micro-batch that touches a (window_start,
-- page_url) inserts its new running total, versioned by batch_id; ReplacingMergeTree
-- keeps the newest. Readers use FINAL or argMax (the page_clicks_latest view).
CREATE TABLE page_clicks_1m
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
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, page_url)
TTL window_start + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Every message the job could not count: why, where it sits in Kafka (to replay it), and
-- a sample. One row per Kafka position, even if its batch is replayed.
CREATE TABLE rejected_events
(
    kafka_topic      LowCardinality(String),
    kafka_partition  Int32,
    kafka_offset     Int64,
    kafka_timestamp  DateTime64(3, 'UTC'),
    reason           LowCardinality(String),
    raw_prefix       String,
    raw_bytes        UInt32,
    raw_sha256       String,
    batch_id         UInt64,
    rejected_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(batch_id)
PARTITION BY toYYYYMM(rejected_at)
ORDER BY (kafka_topic, kafka_partition, kafka_offset)
TTL toDateTime(rejected_at) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- One row per micro-batch: how fast, how long, how far behind, and where every record
-- it read went.
CREATE TABLE pipeline_progress
(
    query_name                 LowCardinality(String),
    query_id                   String,
    run_id                     String,
    batch_id                   UInt64,
    reported_at                DateTime64(3, 'UTC'),
    batch_time                 DateTime64(3, 'UTC'),
    num_input_rows             UInt64,
    input_rows_per_second      Float64,
    processed_rows_per_second  Float64,
    batch_duration_ms          UInt64,
    rows_dropped_by_watermark  UInt64,
    state_rows                 UInt64,
    kafka_lag                  UInt64,
    watermark                  Nullable(DateTime64(3, 'UTC')),
    counted                    UInt64,
    duplicates_removed         UInt64,
    rejected                   UInt64
)
ENGINE = ReplacingMergeTree(reported_at)
PARTITION BY toYYYYMM(batch_time)
ORDER BY (query_name, query_id, batch_id)
TTL toDateTime(batch_time) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- The latest count of each (window, page): argMax over the version column.
CREATE VIEW page_clicks_latest AS
SELECT
    window_start,
    any(window_end) AS window_end,
    page_url,
    argMax(clicks, batch_id) AS clicks
FROM page_clicks_1m
GROUP BY window_start, page_url;

-- Top pages over the last N minutes: SELECT * FROM top_pages(minutes = 5).
CREATE VIEW top_pages AS
SELECT
    page_url,
    sum(clicks) AS clicks
FROM page_clicks_latest
WHERE window_start >= toStartOfMinute(now('UTC')) - toIntervalMinute({minutes:UInt32})
GROUP BY page_url
ORDER BY clicks DESC, page_url;

-- Rejected events per minute (of the pipeline's clock) and reason.
CREATE VIEW rejected_events_by_reason AS
SELECT
    toStartOfMinute(rejected_at) AS minute,
    reason,
    count() AS events
FROM rejected_events FINAL
GROUP BY minute, reason;

-- Pipeline health per minute and query: rates, batch duration, late rows, lag.
CREATE VIEW pipeline_health AS
SELECT
    toStartOfMinute(batch_time) AS minute,
    query_name,
    sum(num_input_rows) AS input_rows,
    avg(input_rows_per_second) AS input_rows_per_second,
    avg(processed_rows_per_second) AS processed_rows_per_second,
    max(batch_duration_ms) AS max_batch_duration_ms,
    sum(rows_dropped_by_watermark) AS late_rows_dropped,
    max(kafka_lag) AS max_kafka_lag
FROM pipeline_progress FINAL
GROUP BY minute, query_name;

-- Where every record went, per batch: read = counted + duplicates_removed + dropped_late
-- + rejected. `balanced` is 1 when the identity holds (always, unless something is wrong).
CREATE VIEW pipeline_accounting AS
SELECT
    query_name,
    query_id,
    batch_id,
    batch_time,
    num_input_rows AS records_read,
    counted,
    duplicates_removed,
    rows_dropped_by_watermark AS dropped_late,
    rejected,
    records_read = counted + duplicates_removed + dropped_late + rejected AS balanced
FROM pipeline_progress FINAL;

-- The same per minute of the pipeline's clock, for dashboards.
CREATE VIEW pipeline_accounting_1m AS
SELECT
    toStartOfMinute(batch_time) AS minute,
    query_name,
    sum(records_read) AS records_read,
    sum(counted) AS counted,
    sum(duplicates_removed) AS duplicates_removed,
    sum(dropped_late) AS dropped_late,
    sum(rejected) AS rejected,
    min(balanced) AS balanced
FROM pipeline_accounting
GROUP BY minute, query_name;
