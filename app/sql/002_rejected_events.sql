-- Every event the job could not count, with why, and where it sits in Kafka so it can be
-- replayed. Keyed by (kafka_partition, kafka_offset): a message is rejected once, even if
-- its batch is replayed.
CREATE TABLE IF NOT EXISTS rejected_events
(
    kafka_topic      LowCardinality(String),
    kafka_partition  Int32,
    kafka_offset     Int64,
    kafka_timestamp  DateTime64(3, 'UTC'),
    reason           LowCardinality(String),
    raw_value        String,
    batch_id         UInt64,
    rejected_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(batch_id)
PARTITION BY toDate(kafka_timestamp)
ORDER BY (kafka_topic, kafka_partition, kafka_offset)
TTL toDateTime(kafka_timestamp) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000
