"""Each stage of the Spark job on small static DataFrames, shaped like Kafka records."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from pyspark.sql import functions as F
from pyspark.sql import types as T

from app.contract import encode
from app.processor import batch, transforms

# A recent minute: events older than MAX_EVENT_AGE (89 days) are rejected as expired.
T0 = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
KAFKA_SCHEMA = T.StructType(
    [
        T.StructField("topic", T.StringType()),
        T.StructField("partition", T.IntegerType()),
        T.StructField("offset", T.LongType()),
        T.StructField("timestamp", T.TimestampType()),
        T.StructField("value", T.BinaryType()),
    ]
)


def event(n: int, **changes) -> dict:
    base = {
        "event_id": f"00000000-0000-4000-8000-{n:012d}",
        "schema_version": 1,
        "event_time": (T0 + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "user_id": f"u-{n}",
        "session_id": "s-1",
        "page_url": "/products/1",
        "event_type": "page_view",
        "referrer": None,
        "user_agent": "test",
        "device": "desktop",
        "country": "US",
    }
    base.update(changes)
    return base


def kafka_frame(spark, values: list[bytes]):
    rows = [("clicks", 0, offset, T0, value) for offset, value in enumerate(values)]
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


def checked(
    spark,
    values: list[bytes | None],
    max_bytes: int = 4096,
    future_skew: float = 300,
    max_age: float = 89 * 86400,
    max_page_url_length: int = 2048,
    sample_bytes: int = 1024,
):
    return transforms.judge(
        transforms.parse(kafka_frame(spark, values)),
        max_bytes,
        future_skew,
        max_age,
        max_page_url_length,
        sample_bytes,
    )


def reasons(spark, values: list[bytes], **kw) -> list[str | None]:
    rows = checked(spark, values, **kw).orderBy("kafka_offset").collect()
    return [r.reject_reason for r in rows]


def raw(obj: dict) -> bytes:
    return json.dumps(obj).encode()


def test_a_valid_event_passes_every_check(spark):
    assert reasons(spark, [encode(event(1)), raw({**event(2), "schema_version": None})]) == [
        None,
        None,
    ]


INVALID = [
    (b'{"event_id": "x", "page_', "malformed_json"),
    (b"not json at all", "malformed_json"),
    (b"[1, 2, 3]", "malformed_json"),
    (b'"just a string"', "malformed_json"),
    (b"", "malformed_json"),
    (raw({**event(1), "user_id": None}), "missing_user_id"),
    (raw({k: v for k, v in event(1).items() if k != "user_id"}), "missing_user_id"),
    (raw({**event(1), "page_url": None}), "missing_page_url"),
    (raw({**event(1), "event_id": None}), "missing_event_id"),
    (raw({**event(1), "event_time": None}), "missing_event_time"),
    (raw({**event(1), "user_id": 42}), "wrong_type_user_id"),
    (raw({**event(1), "page_url": {"path": "/"}}), "wrong_type_page_url"),
    (raw({**event(1), "schema_version": "1"}), "wrong_type_schema_version"),
    (raw({**event(1), "schema_version": 1.5}), "wrong_type_schema_version"),
    (raw({**event(1), "event_time": 1764417600}), "wrong_type_event_time"),
    (raw({**event(1), "country": ["US"]}), "wrong_type_country"),
    (raw({**event(1), "event_id": "not-a-uuid"}), "invalid_event_id"),
    (raw({**event(1), "event_time": "yesterday"}), "invalid_event_time"),
    (raw({**event(1), "event_time": "2026-11-29 12:00:00"}), "invalid_event_time"),
    (raw({**event(1), "event_time": "2099-01-01T00:00:00.000Z"}), "future_event_time"),
    (raw({**event(1), "schema_version": 2}), "unsupported_schema_version"),
    (raw({**event(1), "event_type": "hover"}), "invalid_event_type"),
    (raw({**event(1), "page_url": "products/1"}), "invalid_page_url"),
    (raw({**event(1), "referrer": "x" * 5000}), "oversized"),
    # Found by the hostile-input review: none of these may count.
    (None, "null_value"),
    (encode(event(1)) + encode(event(2)), "malformed_json"),
    (encode(event(1)) + b" " + encode(event(2)), "malformed_json"),
    (encode(event(1)) + b',{"a":1}', "malformed_json"),
    (encode(event(1)) + b" 5", "malformed_json"),
    (encode(event(1)) + b'"tail"', "malformed_json"),
    (encode(event(1)) + b"]", "malformed_json"),
    ("\ufeff".encode() + encode(event(1)), "malformed_json"),
    (b'{"event_id": "a", "event_id": "b"}', "malformed_json"),
    (raw({**event(1), "user_id": ""}), "empty_user_id"),
    (raw({**event(1), "user_id": "   "}), "empty_user_id"),
    (raw({**event(1), "page_url": ""}), "empty_page_url"),
    (raw({**event(1), "page_url": "/cart\u0000"}), "invalid_page_url"),
    (raw({**event(1), "page_url": "/cart\nSet-Cookie: x"}), "invalid_page_url"),
    (raw({**event(1), "page_url": "/cart\u007f"}), "invalid_page_url"),
    (raw({**event(1), "page_url": "/" + "p" * 2048}), "page_url_too_long"),
    (raw({**event(1), "event_time": "2026-01-01T00:00:00.000Z"}), "expired_event_time"),
    (raw({**event(1), "event_time": "1970-01-01T00:00:00.000Z"}), "expired_event_time"),
    (raw({**event(1), "schema_version": 10**30}), "wrong_type_schema_version"),
    (raw({**event(1), "referrer": '"' * 1500}) + b"{}", "malformed_json"),
]

# Valid, though a careless check could think otherwise.
ALSO_VALID = [
    raw({**event(1), "page_url": "/search?q=%7B%7D{}[]"}),  # braces inside a string
    raw({**event(2), "referrer": '\u007b"[\\'}),  # escaped braces, quotes, backslash
    encode(event(3)) + b" \n\t",  # trailing whitespace
    raw({**event(4), "event_id": event(4)["event_id"].upper()}),
    raw({**event(5), "page_url": "/" + "p" * 2047}),  # exactly the longest allowed
    raw({**event(6), "page_url": "/caf\u00e9/\u65e5\u672c"}),
    # Many escapes in a row: the most repetitions a pattern over string literals meets.
    raw({**event(7), "referrer": '"' * 1500}),
]


def test_each_invalid_event_gets_its_reason(spark):
    # One DataFrame for all cases: a Spark job per case would cost a second each.
    values = [value for value, _ in INVALID] + ALSO_VALID
    got = reasons(spark, values)
    expected = INVALID + [(value, None) for value in ALSO_VALID]
    assert list(zip(values, got, strict=True)) == expected


def test_event_time_accepts_offsets_and_whole_seconds(spark):
    plus_one = (T0 + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    values = [
        raw(event(1, event_time=f"{plus_one}.250+01:00")),
        raw(event(2, event_time=T0.strftime("%Y-%m-%dT%H:%M:%SZ"))),
    ]
    rows = transforms.valid_events(checked(spark, values)).orderBy("kafka_offset").collect()
    # Collected timestamps are naive, in the local zone (UTC on these machines).
    assert [r.event_time.replace(tzinfo=UTC) for r in rows] == [
        T0 + timedelta(milliseconds=250),
        T0,
    ]


def test_a_little_future_skew_is_tolerated(spark):
    soon = (datetime.now(UTC) + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    late = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert reasons(
        spark, [raw(event(1, event_time=soon)), raw(event(2, event_time=late))], future_skew=300
    ) == [None, "future_event_time"]


def test_valid_events_are_typed_and_rejects_keep_where_they_came_from(spark):
    values = [encode(event(1)), b"{oops", raw({**event(3), "user_id": None}), None]
    frame = checked(spark, values, sample_bytes=3)
    valid = transforms.valid_events(frame).collect()
    assert len(valid) == 1
    assert valid[0].event_id == event(1)["event_id"]
    assert valid[0].schema_version == 1
    assert dict(transforms.valid_events(frame).dtypes)["event_time"] == "timestamp"
    rejected = transforms.rejected_events(frame).orderBy("kafka_offset").collect()
    assert [
        (r.kafka_offset, r.reason, r.raw_prefix, r.raw_bytes, r.raw_sha256) for r in rejected
    ] == [
        (1, "malformed_json", "{oo", 5, hashlib.sha256(b"{oops").hexdigest()),
        (2, "missing_user_id", '{"e', len(values[2]), hashlib.sha256(values[2]).hexdigest()),
        (3, "null_value", "", 0, hashlib.sha256(b"").hexdigest()),
    ]


def test_dedupe_then_count_per_page_and_window(spark):
    upper = {**event(2, page_url="/"), "event_id": event(2)["event_id"].upper()}
    values = [
        encode(event(1, page_url="/")),
        encode(event(1, page_url="/")),  # the same event_id again: dropped
        encode(event(2, page_url="/")),
        encode(upper),  # the same event_id in capitals: dropped too
        encode(event(3, page_url="/cart")),
        encode(event(70, page_url="/")),  # 12:01:10, the next window
        b"{oops",  # a reject passes through dedupe, but is not counted
        b"{oops",
    ]
    deduped = transforms.dedupe(checked(spark, values), 120)
    counted = transforms.count_page_clicks(transforms.valid_events(deduped), 60)
    start = int(T0.timestamp())
    assert sorted(tuple(r) for r in counted.collect()) == [
        (start, start + 60, "/", 2),
        (start, start + 60, "/cart", 1),
        (start + 60, start + 120, "/", 1),
    ]
    assert transforms.rejected_events(deduped).count() == 2  # each reject has its own key
    # What the sink does: collect the batch once, count and split it in the driver. The
    # same increments as Spark's, the same rejects, and every valid event for `events`.
    valid, rejected = batch.split(transforms.batch_rows(deduped, 60).toArrow())
    assert [tuple(r) for r in batch.window_increments(valid, 60)] == [
        (start, start + 60, "/", 2),
        (start, start + 60, "/cart", 1),
        (start + 60, start + 120, "/", 1),
    ]
    assert [(r.kafka_offset, r.reason) for r in batch.reject_rows(rejected, 1)] == [
        (6, "malformed_json"),
        (7, "malformed_json"),
    ]
    events = batch.event_rows(valid, 9)
    assert events.column_names == list(batch.EVENTS_COLUMNS)
    assert sorted(events["page_url"].to_pylist()) == ["/", "/", "/", "/cart"]
    assert set(events["batch_id"].to_pylist()) == {9}


def test_the_watermark_follows_the_pipeline_clock_not_the_client_clock(spark):
    soon = datetime.now(UTC) + timedelta(minutes=4)
    values = [
        encode(event(1)),
        encode({**event(2), "event_time": soon.strftime("%Y-%m-%dT%H:%M:%S.000Z")}),
        b"{oops",
    ]
    rows = (
        transforms.dedupe(checked(spark, values), 120)
        .select("kafka_offset", "event_time", "watermark_time", F.current_timestamp().alias("now"))
        .orderBy("kafka_offset")
        .collect()
    )
    assert rows[0].watermark_time == rows[0].event_time  # in the past: its own time
    assert rows[1].event_time > rows[1].now  # counted in its own (future) window...
    assert rows[1].watermark_time == rows[1].now  # ...but the watermark sees the clock
    assert rows[2].watermark_time is None  # rejects neither move nor meet the watermark


def test_window_length_is_a_setting(spark):
    values = [encode(event(n, page_url="/")) for n in (0, 9, 10, 25)]
    counted = transforms.count_page_clicks(transforms.valid_events(checked(spark, values)), 10)
    start = int(T0.timestamp())
    assert sorted((r.window_start - start, r.clicks) for r in counted.collect()) == [
        (0, 2),
        (10, 1),
        (20, 1),
    ]


def _acceptable_messages() -> list[bytes]:
    """Every combination of acceptable fields: optional ones absent, null or typed."""
    from itertools import product

    from app.contract import FIELDS

    options = []
    for field in FIELDS:
        value = 1 if field.kind == "int" else "x"
        options.append(
            [(field.name, value)]
            if field.required
            else [None, (field.name, None), (field.name, value)]
        )
    return [raw(dict(pair for pair in choice if pair)) for choice in product(*options)]


def test_every_combination_of_acceptable_fields_has_a_conforming_shape(spark):
    messages = _acceptable_messages()
    shapes = {
        row.shape
        for row in transforms.parse(kafka_frame(spark, messages)).select("shape").collect()
    }
    assert len(messages) == 3**7
    assert len(shapes) == 3**7
    assert shapes <= transforms.CONFORMING_SHAPES


def test_a_shape_outside_the_contract_is_not_conforming(spark):
    unknown_field = raw({**event(1), "extra": "x"})
    string_version = raw({**event(2), "schema_version": "1"})
    missing_user = raw({k: v for k, v in event(3).items() if k != "user_id"})
    shapes = [
        row.shape
        for row in transforms.parse(
            kafka_frame(spark, [unknown_field, string_version, missing_user])
        )
        .orderBy("kafka_offset")
        .collect()
    ]
    assert [shape in transforms.CONFORMING_SHAPES for shape in shapes] == [False, False, False]
    # The field-by-field checks then decide: an unknown field is still a valid event.
    assert reasons(spark, [unknown_field, string_version, missing_user]) == [
        None,
        "wrong_type_schema_version",
        "missing_user_id",
    ]


def test_the_shape_shortcut_gives_the_reasons_the_field_checks_give(spark):
    """The job skips the type checks for a conforming shape; without the shortcut, every
    message is checked field by field. Both must give each message the same reason."""
    from tests.hostile_messages import HostileStream

    stream = HostileStream(seed=20261202, now=datetime.now(UTC), spread_seconds=3600)
    messages = [stream.next().value for _ in range(3000)] + _acceptable_messages()
    parsed = transforms.parse(kafka_frame(spark, messages))

    def reason(conforming):
        return transforms.reject_reason(4096, 300, 89 * 86400, 2048, conforming=conforming)

    rows = parsed.select(
        "kafka_offset",
        reason(transforms.CONFORMING_SHAPES).alias("with_shortcut"),
        reason(frozenset()).alias("field_by_field"),
    ).collect()
    differing = [r for r in rows if r.with_shortcut != r.field_by_field]
    assert differing == []
    seen = {r.field_by_field for r in rows}
    print(f"{len(rows)} messages, {len(seen)} distinct reasons: {sorted(map(str, seen))}")
    # Not vacuous: valid events, and rejects of each group (whole message, type, value).
    assert {None, "malformed_json", "null_value", "oversized", "invalid_event_time"} <= seen
    assert any(r and r.startswith("wrong_type_") for r in seen)
    assert any(r and r.startswith("missing_") for r in seen)


def test_a_reject_of_bytes_that_are_not_utf8_reaches_the_driver(spark):
    # The fuzz test's random bytes stopped the query here: Arrow refused the sample's
    # invalid UTF-8 in the driver. The sample keeps each bad byte as U+FFFD.
    raw = b"\xfe\xff{\x80ok"
    deduped = transforms.dedupe(checked(spark, [raw]), 120)
    _, rejected = batch.split(transforms.batch_rows(deduped, 60).toArrow())
    rows = [(r.reason, r.raw_prefix, r.raw_bytes) for r in batch.reject_rows(rejected, 10)]
    assert rows == [("malformed_json", "\ufffd\ufffd{\ufffdok", 6)]
