"""The job's stages, each a function DataFrame -> DataFrame.

The same functions run in the streaming query (app/processor/job.py) and in the unit
tests on small static DataFrames. No Python UDFs: every check is a Spark expression, so
the work stays in the JVM.

The shape is one read, many outputs: every Kafka record is parsed and judged once
(`parse`, `judge`), then valid events and rejects travel together through one
deduplicating, watermarked stage (`dedupe`) and the micro-batch sink fans them out to
their tables (app/processor/sink.py).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from app.contract import EVENT_TYPES, FIELDS, SUPPORTED_SCHEMA_VERSIONS, UUID_PATTERN
from app.processor.schema import (
    EVENT_TIME_PATTERN,
    JSON_TYPES,
    conforming_shapes,
    event_schema,
)

KAFKA_COLUMNS = ("kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp")

# JSON string literals are removed in two passes, neither of which recurses: first every
# escape sequence (backslash and the character after it), then every "..." with no quote
# inside. One pattern for both, "(?:[^"\\]++|\\.)*+", makes the JVM's regex engine
# recurse once per repetition of the group; a demo run stopped with a StackOverflowError
# in exactly those frames (Loop, Branch, GroupHead). Which message did it is not known:
# 3,000 escaped quotes did not reproduce it on an executor thread.
_ESCAPE = r"(?s)\\."
_STRING_WITHOUT_ESCAPES = r'"[^"]*"'
# Characters that have no place in a path: C0 controls (NUL included) and DEL.
_CONTROL_CHARACTERS = r"[\x00-\x1f\x7f]"
CONFORMING_SHAPES = conforming_shapes()


def parse(kafka_records: DataFrame) -> DataFrame:
    """Kafka records -> the raw text kept for rejects, the JSON as a variant, the event.

    Each message is parsed once, into a variant (try_parse_json), which keeps the JSON
    types as sent: validation can tell "user_id": 42 from "user_id": "42". The event's
    fields are read from it with the explicit schema (app/processor/schema.py); a field
    of the wrong type reads as its cast or NULL, and is rejected by its type check. A
    record with a null value (a tombstone) is kept, with an empty text, so that it can
    be rejected like the rest.
    """
    raw_text = F.coalesce(F.col("value").cast("string"), F.lit(""))
    return kafka_records.select(
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.col("value"),
        raw_text.alias("raw_text"),
        F.coalesce(F.octet_length("value"), F.lit(0)).alias("value_bytes"),
        F.try_parse_json(raw_text).alias("json"),
    ).select(
        "*",
        # The fields, typed by the contract's schema, read from the one parse above.
        F.struct(
            *[
                F.try_variant_get("json", f"$.{f.name}", f.dataType.simpleString()).alias(f.name)
                for f in event_schema().fields
            ]
        ).alias("event"),
        # The message's shape, as `OBJECT<country: STRING, ...>`: one look at it tells
        # whether every field has an acceptable type (app/processor/schema.py).
        F.schema_of_variant("json").alias("shape"),
        F.try_to_timestamp(F.col("event.event_time"), F.lit(EVENT_TIME_PATTERN)).alias(
            "event_time"
        ),
    )


def _json_type(field: str) -> Column:
    """The JSON type of a top-level field: NULL when absent, 'VOID' when null."""
    return F.schema_of_variant(F.try_variant_get("json", f"$.{field}", "variant"))


def _without_strings(json_text: Column) -> Column:
    """The text with every string literal replaced by "" (kept, so a string still shows)."""
    return F.regexp_replace(F.regexp_replace(json_text, _ESCAPE, ""), _STRING_WITHOUT_ESCAPES, '""')


def _openings(json_text: Column) -> Column:
    """How many objects and arrays a JSON text opens, outside its strings."""
    shape = _without_strings(json_text)
    return F.length(shape) - F.length(F.translate(shape, "{[", ""))


def _more_than_one_value(raw_text: Column, json: Column) -> Column:
    """True when text follows the first JSON value, as in '{...}{...}' or '{...} junk'.

    The parser reads the first value and ignores the rest, which would count the first
    event and drop the others in silence. The exact test: the first value, written out
    again, opens as many objects and arrays as the whole message (outside strings), and
    the message ends where that object ends. It costs two regular-expression passes, so
    it runs only when the first '}' is not the message's last character but for
    whitespace. When it is, the message holds one '}', so the object (which the parser
    found) closes there and nothing but whitespace follows.
    """
    last = F.length(F.rtrim(raw_text, F.lit(" \t\n\r")))
    ends_at_the_first_brace = F.instr(raw_text, "}") == last
    ends_with_the_object = _without_strings(raw_text).rlike(r"\}\s*$")
    exact = ~ends_with_the_object | (_openings(raw_text) != _openings(F.to_json(json)))
    return F.when(ends_at_the_first_brace, F.lit(False)).otherwise(exact)


def reject_reason(
    max_event_bytes: int,
    max_future_skew_seconds: float,
    max_event_age_seconds: float,
    max_page_url_length: int,
    conforming: frozenset[str] = CONFORMING_SHAPES,
) -> Column:
    """Why an event cannot be counted, or NULL when it is valid. The first failing check wins.

    Checks run in order and stop at the first that fails (a CASE WHEN), so the costlier
    ones only look at messages the cheap ones let through. Three groups, in this order:
    the message as a whole, each field's JSON type, each field's value. The type checks
    run field by field only for a message whose shape is not a conforming one (one set
    lookup): for every other message they would all pass. (`conforming` is there for
    the test that both paths give the same reason; the job keeps the default.)
    """
    shape = F.col("shape")
    whole: list[tuple[Column, str]] = [
        (F.col("value").isNull(), "null_value"),
        (F.col("value_bytes") > max_event_bytes, "oversized"),
        (F.col("json").isNull(), "malformed_json"),
        (~shape.startswith("OBJECT"), "malformed_json"),
        (_more_than_one_value(F.col("raw_text"), F.col("json")), "malformed_json"),
    ]
    types: list[tuple[Column, str]] = []
    for field in FIELDS:
        json_type = _json_type(field.name)
        if field.required:
            types.append((json_type.isNull() | (json_type == "VOID"), f"missing_{field.name}"))
        types.append(
            (
                json_type.isNotNull()
                & (json_type != "VOID")
                & ~json_type.isin(*JSON_TYPES[field.kind]),
                f"wrong_type_{field.name}",
            )
        )
    event = F.col("event")
    now = F.current_timestamp()
    skew = F.make_dt_interval(secs=F.lit(float(max_future_skew_seconds)))
    age = F.make_dt_interval(secs=F.lit(float(max_event_age_seconds)))
    values: list[tuple[Column, str]] = [
        (~event.event_id.rlike(UUID_PATTERN), "invalid_event_id"),
        (F.trim(event.user_id) == "", "empty_user_id"),
        (F.trim(event.page_url) == "", "empty_page_url"),
        (F.col("event_time").isNull(), "invalid_event_time"),
        (F.col("event_time") > now + skew, "future_event_time"),
        (F.col("event_time") < now - age, "expired_event_time"),
        (
            event.schema_version.isNotNull()
            & ~event.schema_version.isin(*SUPPORTED_SCHEMA_VERSIONS),
            "unsupported_schema_version",
        ),
        (event.event_type.isNotNull() & ~event.event_type.isin(*EVENT_TYPES), "invalid_event_type"),
        (F.length(event.page_url) > max_page_url_length, "page_url_too_long"),
        (
            ~event.page_url.startswith("/") | event.page_url.rlike(_CONTROL_CHARACTERS),
            "invalid_page_url",
        ),
    ]
    # A non-conforming shape whose types all pass (an unknown extra field, say) gives NULL
    # here, and its values are checked next: coalesce stops at the first reason it finds.
    is_conforming = shape.isin(*sorted(conforming)) if conforming else F.lit(False)
    whole_or_types = _first_failing([*whole, (~is_conforming, _first_failing(types))])
    return F.coalesce(whole_or_types, _first_failing(values))


def _first_failing(checks: list[tuple[Column, Column | str]]) -> Column:
    """CASE WHEN check THEN reason ... END: the first check that holds gives the reason."""
    reason = F.when(checks[0][0], checks[0][1])
    for condition, name in checks[1:]:
        reason = reason.when(condition, name)
    return reason


def judge(
    parsed: DataFrame,
    max_event_bytes: int,
    max_future_skew_seconds: float,
    max_event_age_seconds: float,
    max_page_url_length: int,
    reject_sample_bytes: int,
) -> DataFrame:
    """One row per Kafka record: the typed event when valid, its reason and a sample when not.

    Rejects keep a bounded prefix of the message, its length and its SHA-256, never the
    whole message: a burst of large messages cannot fill the driver or the table. The
    prefix is cut at a character boundary, so it is at most `reject_sample_bytes` long
    in characters and a little longer in bytes for non-ASCII text.
    """
    reason = reject_reason(
        max_event_bytes, max_future_skew_seconds, max_event_age_seconds, max_page_url_length
    )
    with_reason = parsed.withColumn("reject_reason", reason)
    is_valid = F.col("reject_reason").isNull()

    def if_valid(column: Column) -> Column:
        return F.when(is_valid, column)

    fields = [
        if_valid(F.col(f"event.{f.name}")).alias(f.name)
        for f in FIELDS
        if f.name not in ("event_id", "event_time")
    ]
    return with_reason.select(
        *KAFKA_COLUMNS,
        # One event_id, however it is spelt: UUIDs are case-insensitive, dedupe must be too.
        if_valid(F.lower(F.col("event.event_id"))).alias("event_id"),
        if_valid(F.col("event_time")).alias("event_time"),
        *fields,
        F.col("reject_reason"),
        # Valid UTF-8 (each bad byte as U+FFFD): a message of any bytes must reach the
        # driver, which reads the batch as Arrow, and the table.
        F.when(~is_valid, F.make_valid_utf8(F.substring("raw_text", 1, reject_sample_bytes))).alias(
            "raw_prefix"
        ),
        F.when(~is_valid, F.col("value_bytes")).alias("raw_bytes"),
        F.when(~is_valid, F.sha2(F.coalesce("value", F.lit(b"")), 256)).alias("raw_sha256"),
    )


def dedupe(judged: DataFrame, watermark_delay_seconds: float) -> DataFrame:
    """Watermark, then drop repeats of an event_id seen within the watermark.

    The watermark follows `watermark_time`: the event time, but never later than the
    micro-batch's own clock (current_timestamp() is the batch's timestamp, recorded in the
    checkpoint, so a replay sees the same value). One event stamped in the future (a fast
    client clock) therefore cannot move the watermark past what the pipeline has observed
    and make on-time events late. Rejects have no event time here: they neither move the
    watermark nor are dropped as late, and each has a key of its own (its Kafka position),
    so they pass through this stage unchanged and are accounted for with the rest.

    The watermark also bounds the state: an event_id is forgotten once the watermark
    passes it, and an event older than the watermark is dropped as late.
    """
    now = F.current_timestamp()
    is_valid = F.col("reject_reason").isNull()
    position = [F.col(c).cast("string") for c in KAFKA_COLUMNS[:3]]
    keyed = judged.select(
        "*",
        F.when(is_valid, F.concat(F.lit("e:"), "event_id"))
        .otherwise(F.concat_ws(":", F.lit("k"), *position))
        .alias("dedupe_key"),
        # NULL for rejects: Spark leaves a row without an event time out of the watermark's
        # maximum and never drops it as late. (least() skips NULLs, hence the when.)
        F.when(is_valid, F.least("event_time", now)).alias("watermark_time"),
    )
    watermarked = keyed.withWatermark("watermark_time", f"{int(watermark_delay_seconds)} seconds")
    if not judged.isStreaming:
        # A static frame has no watermark to bound state: a plain dedupe is the same thing.
        return watermarked.dropDuplicates(["dedupe_key"])
    return watermarked.dropDuplicatesWithinWatermark(["dedupe_key"])


def valid_events(deduped: DataFrame) -> DataFrame:
    """The events that count, one typed column per contract field."""
    names = [f.name for f in FIELDS]
    return deduped.where(F.col("reject_reason").isNull()).select(*names, *KAFKA_COLUMNS)


def rejected_events(deduped: DataFrame) -> DataFrame:
    """Everything that does not count, with its reason and where it sits in Kafka."""
    return deduped.where(F.col("reject_reason").isNotNull()).select(
        *KAFKA_COLUMNS,
        F.col("reject_reason").alias("reason"),
        "raw_prefix",
        "raw_bytes",
        "raw_sha256",
    )


def window_start(event_time: Column, window_seconds: float) -> Column:
    """The tumbling window's start in epoch seconds: floor(t / w) * w (no time zones).

    Computed, not Spark's window(), which would drop the rejects: they have no time."""
    width = int(window_seconds)
    return (F.floor(F.unix_seconds(event_time) / width) * width).cast("long")


def batch_rows(deduped: DataFrame, window_seconds: float) -> DataFrame:
    """A micro-batch as the sink collects it: every row, with what any output needs.

    The sink reads this once, as Arrow (one Spark job), and splits it in the driver into
    the events, the window increments and the rejects (app/processor/batch.py): each
    further Spark job would cost a batch a fixed quarter-second here. Kafka's order within
    each partition, so a replay cuts the same slices and chunks; sorting within Spark's
    partitions costs no shuffle.
    """
    names = [f.name for f in FIELDS]
    return deduped.select(
        *names,
        *KAFKA_COLUMNS[:3],
        # Epoch milliseconds: a collected timestamp would be read in the local zone.
        F.unix_millis("kafka_timestamp").alias("kafka_timestamp_ms"),
        F.col("reject_reason").alias("reason"),
        "raw_prefix",
        "raw_bytes",
        "raw_sha256",
        window_start(F.col("event_time"), window_seconds).alias("window_start"),
    ).sortWithinPartitions("kafka_partition", "kafka_offset")


def count_page_clicks(events: DataFrame, window_seconds: float) -> DataFrame:
    """Clicks per page per tumbling window, in Spark; window bounds as epoch seconds.

    The sink counts a batch's increments in the driver from the rows it has collected
    anyway (app/processor/batch.py), to the same definition; this is the Spark form, for
    the profile (app/runtime/profile.py) and for the test that both agree.
    """
    width = int(window_seconds)
    return (
        events.groupBy(window_start(F.col("event_time"), width).alias("window_start"), "page_url")
        .agg(F.count(F.lit(1)).alias("clicks"))
        .select(
            "window_start",
            (F.col("window_start") + width).alias("window_end"),
            "page_url",
            "clicks",
        )
    )
