"""The wire form: encode() and format_event_time() write exactly what json and strftime did."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.contract import FIELD_NAMES, encode, format_event_time, parse_event_time


def with_json(event: dict) -> bytes:
    """The wire form as json.dumps writes it: the definition encode() must match."""
    ordered = {name: event.get(name) for name in FIELD_NAMES}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()


BASE = {
    "event_id": "978648f8-64de-42e6-a82c-7d7b06e745f9",
    "schema_version": 1,
    "event_time": "2026-11-29T12:00:00.000Z",
    "user_id": "u-46850196",
    "session_id": "50fd9d3f-85d5-4695-90b2-b633956b8c0c",
    "page_url": "/",
    "event_type": "page_view",
    "referrer": None,
    "user_agent": "Opera/8.39.(X11; Linux i686; yue-HK) Presto/2.9.166 Version/12.00",
    "device": "mobile",
    "country": "RS",
}


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"user_agent": 'quote " backslash \\ slash / tab \t newline \n nul \x00 del \x7f'},
        {"page_url": "/søg/カート/🛒", "referrer": "\u2028\u2029"},
        {"user_id": None, "page_url": None},
        {"schema_version": -7},
        {"schema_version": 10**30},
        {"schema_version": True},
        {"schema_version": 1.5},
        {"schema_version": float("nan")},
        {"page_url": ["/", {"a": None}]},
        {"country": ""},
        {"extra": "not in the contract"},
    ],
)
def test_encode_writes_what_json_dumps_writes(changes):
    event = {**BASE, **changes}
    assert encode(event) == with_json(event)


def test_encode_fills_missing_fields_with_null_in_contract_order():
    assert encode({"page_url": "/cart", "event_id": "x"}) == (
        b'{"event_id":"x","schema_version":null,"event_time":null,"user_id":null,'
        b'"session_id":null,"page_url":"/cart","event_type":null,"referrer":null,'
        b'"user_agent":null,"device":null,"country":null}'
    )


def test_encode_of_an_int_subclass_is_the_int():
    class Version(int):
        def __repr__(self) -> str:
            return "Version()"

    event = {**BASE, "schema_version": Version(3)}
    assert encode(event) == with_json(event)
    assert b'"schema_version":3,' in encode(event)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 11, 29, 5, 47, 57, 123_999, tzinfo=UTC), "2026-11-29T05:47:57.123Z"),
        (datetime(2026, 11, 29, 5, 47, 57, tzinfo=UTC), "2026-11-29T05:47:57.000Z"),
        (datetime(2026, 11, 29, 5, 47, 57, 999, tzinfo=UTC), "2026-11-29T05:47:57.000Z"),
        (datetime(2026, 1, 1, 0, 0, 0, 7_000, tzinfo=UTC), "2026-01-01T00:00:00.007Z"),
        (
            datetime(2026, 11, 29, 6, 47, 57, 123_000, tzinfo=timezone(timedelta(hours=1))),
            "2026-11-29T05:47:57.123Z",
        ),
        (
            datetime(2026, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2025-12-31T20:00:00.000Z",
        ),
    ],
)
def test_event_times_are_utc_with_milliseconds_truncated(moment, text):
    assert format_event_time(moment) == text
    assert format_event_time(moment) == (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{moment.astimezone(UTC).microsecond // 1000:03d}Z"
    )


def test_an_event_time_survives_a_round_trip():
    text = "2026-11-29T05:47:57.123Z"
    assert format_event_time(parse_event_time(text)) == text
