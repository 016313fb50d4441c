"""The job's stages, each a function DataFrame -> DataFrame.

The same functions run in the streaming query (app/processor/job.py) and in the unit
tests on small static DataFrames. No Python UDFs: every check is a Spark expression, so
the work stays in the JVM.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from app.contract import EVENT_TYPES, FIELDS, SUPPORTED_SCHEMA_VERSIONS, UUID_PATTERN
from app.processor.schema import EVENT_TIME_PATTERN, JSON_TYPES, event_schema

KAFKA_COLUMNS = ("kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp")


def parse(kafka_records: DataFrame) -> DataFrame:
    """Kafka records -> the raw value kept for rejects, the JSON as a variant, the event.

    from_json with the explicit schema extracts the fields; try_parse_json keeps the JSON
    types as sent, so validation can tell "user_id": 42 from "user_id": "42", which
    from_json alone would silently turn into the same string.
    """
    raw_value = F.col("value").cast("string")
    return kafka_records.select(
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        raw_value.alias("raw_value"),
        F.octet_length("value").alias("value_bytes"),
        F.try_parse_json(raw_value).alias("json"),
        F.from_json(raw_value, event_schema()).alias("event"),
    ).select(
        "*",
        # Each field's JSON type, computed once here: the checks below read it several times.
        F.struct(*[_json_type(f.name).alias(f.name) for f in FIELDS]).alias("json_types"),
        F.try_to_timestamp(F.col("event.event_time"), F.lit(EVENT_TIME_PATTERN)).alias(
            "event_time"
        ),
    )


def _json_type(field: str) -> Column:
    """The JSON type of a top-level field: NULL when absent, 'VOID' when null."""
    return F.schema_of_variant(F.try_variant_get("json", f"$.{field}", "variant"))


def reject_reason(max_event_bytes: int, max_future_skew_seconds: float) -> Column:
    """Why an event cannot be counted, or NULL when it is valid. The first failing check wins."""
    checks: list[tuple[Column, str]] = [
        (F.col("value_bytes") > max_event_bytes, "oversized"),
        (F.col("json").isNull(), "malformed_json"),
        (~F.schema_of_variant("json").startswith("OBJECT"), "malformed_json"),
    ]
    for field in FIELDS:
        json_type = F.col(f"json_types.{field.name}")
        if field.required:
            checks.append((json_type.isNull() | (json_type == "VOID"), f"missing_{field.name}"))
        checks.append(
            (
                json_type.isNotNull()
                & (json_type != "VOID")
                & ~json_type.isin(*JSON_TYPES[field.kind]),
                f"wrong_type_{field.name}",
            )
        )
    event = F.col("event")
    skew = F.make_dt_interval(secs=F.lit(float(max_future_skew_seconds)))
    checks += [
        (~event.event_id.rlike(UUID_PATTERN), "invalid_event_id"),
        (F.col("event_time").isNull(), "invalid_event_time"),
        (F.col("event_time") > F.current_timestamp() + skew, "future_event_time"),
        (
            event.schema_version.isNotNull()
            & ~event.schema_version.isin(*SUPPORTED_SCHEMA_VERSIONS),
            "unsupported_schema_version",
        ),
        (event.event_type.isNotNull() & ~event.event_type.isin(*EVENT_TYPES), "invalid_event_type"),
        (~event.page_url.startswith("/"), "invalid_page_url"),
    ]
    reason = F.when(checks[0][0], checks[0][1])
    for condition, name in checks[1:]:
        reason = reason.when(condition, name)
    return reason


def with_reject_reason(
    parsed: DataFrame, max_event_bytes: int, max_future_skew_seconds: float
) -> DataFrame:
    return parsed.withColumn(
        "reject_reason", reject_reason(max_event_bytes, max_future_skew_seconds)
    )


def valid_events(checked: DataFrame) -> DataFrame:
    """The events that count: one typed column per contract field, event_time a timestamp."""
    fields = [F.col(f"event.{f.name}").alias(f.name) for f in FIELDS if f.name != "event_time"]
    return checked.where(F.col("reject_reason").isNull()).select(
        *fields, F.col("event_time"), *KAFKA_COLUMNS
    )


def rejected_events(checked: DataFrame) -> DataFrame:
    """Everything that does not count, with its reason and where it sits in Kafka."""
    return checked.where(F.col("reject_reason").isNotNull()).select(
        *KAFKA_COLUMNS, F.col("reject_reason").alias("reason"), "raw_value"
    )


def dedupe(events: DataFrame, watermark_delay_seconds: float) -> DataFrame:
    """Watermark on event_time, then drop repeats of an event_id seen within the watermark.

    The watermark also bounds the state: an event_id is forgotten once the watermark
    passes it, and an event older than the watermark is dropped as late.
    """
    watermarked = events.withWatermark("event_time", f"{int(watermark_delay_seconds)} seconds")
    if not events.isStreaming:
        # A static frame has no watermark to bound state: a plain dedupe is the same thing.
        return watermarked.dropDuplicates(["event_id"])
    return watermarked.dropDuplicatesWithinWatermark(["event_id"])


def count_page_clicks(unique_events: DataFrame, window_seconds: float) -> DataFrame:
    """Clicks per page per tumbling window; window bounds as epoch seconds (no time zones)."""
    window = F.window("event_time", f"{int(window_seconds)} seconds")
    return (
        unique_events.groupBy(window.alias("window"), F.col("page_url"))
        .agg(F.count(F.lit(1)).alias("clicks"))
        .select(
            F.unix_seconds(F.col("window.start")).alias("window_start"),
            F.unix_seconds(F.col("window.end")).alias("window_end"),
            "page_url",
            "clicks",
        )
    )
