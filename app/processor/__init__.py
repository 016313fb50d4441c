"""The Spark Structured Streaming job: Kafka, parse, validate, dedupe, window, ClickHouse."""
