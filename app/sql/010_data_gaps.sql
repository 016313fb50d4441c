-- Records Kafka deleted (its retention) before the job read them, accepted by an operator
-- so the job could resume (python -m app.processor.gaps --record; README, Operations:
-- "Down longer than Kafka's retention"). One row per partition and gap: the counts of
-- the time those offsets covered are short by `lost` records, and this says so.
-- Recorded again when the processor resumes over it (more may have gone by then): the
-- newest row of a gap is the gap.

CREATE TABLE IF NOT EXISTS data_gaps
(
    topic LowCardinality(String),
    partition UInt32,
    first_lost UInt64,
    first_kept UInt64,
    lost UInt64,
    recorded_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(recorded_at)
ORDER BY (topic, partition, first_lost)
