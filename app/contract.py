"""The click event contract, version 1: the one definition producer and processor share.

JSON, one event per Kafka message, keyed by user_id. The producer builds events from
``FIELDS``; the processor derives its Spark schema and its required-field checks from the
same tuple (app/processor/schema.py), so the two cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)

EVENT_TYPES = ("page_view", "click", "add_to_cart", "checkout", "purchase")

# A UUID in its canonical text form; event_id is what duplicates are recognised by.
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "string", "int" or "timestamp" (RFC 3339 text on the wire)
    required: bool
    doc: str


FIELDS: tuple[Field, ...] = (
    Field("event_id", "string", True, "UUID; duplicates share it"),
    Field("schema_version", "int", False, "contract version, 1"),
    Field("event_time", "timestamp", True, "RFC 3339 UTC with milliseconds; drives windows"),
    Field("user_id", "string", True, "who clicked"),
    Field("session_id", "string", False, "one visit"),
    Field("page_url", "string", True, "a path such as /products/123"),
    Field("event_type", "string", False, "one of EVENT_TYPES"),
    Field("referrer", "string", False, "where the visit came from"),
    Field("user_agent", "string", False, "browser or bot user agent"),
    Field("device", "string", False, "desktop, mobile or tablet"),
    Field("country", "string", False, "ISO 3166 alpha-2 code"),
)

FIELD_NAMES = tuple(f.name for f in FIELDS)
REQUIRED_FIELDS = tuple(f.name for f in FIELDS if f.required)


def format_event_time(moment: datetime) -> str:
    """RFC 3339, UTC, milliseconds: 2026-11-29T05:47:57.123Z."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # isoformat gives 2026-11-29T05:47:57.123+00:00 (always a 4-digit year); it is the
    # producer's per-event cost, and cheaper than strftime.
    return moment.isoformat(timespec="milliseconds")[:23] + "Z"


def parse_event_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# The wire form's skeleton, {"event_id":%s,...}, and how each kind of value an event holds
# is written into it: json.dumps would write the same text, but costs twice as much per
# event on the producer's hot path.
_WIRE_TEMPLATE = "{" + ",".join(f"{json.dumps(name)}:%s" for name in FIELD_NAMES) + "}"
_WIRE_VALUE = {str: encode_basestring, type(None): lambda _: "null", int: int.__repr__}


def encode(event: dict[str, Any]) -> bytes:
    """The wire form: compact JSON, fields in contract order, UTF-8."""
    try:
        values = tuple([_WIRE_VALUE[type(value)](value) for value in map(event.get, FIELD_NAMES)])
    except KeyError:
        # Any other type (bool, float, a nested object): json.dumps writes it.
        ordered = {name: event.get(name) for name in FIELD_NAMES}
        return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
    return (_WIRE_TEMPLATE % values).encode()
