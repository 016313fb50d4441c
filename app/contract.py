"""The click event contract, version 1: the one definition producer and processor share.

JSON, one event per Kafka message, keyed by user_id. The producer builds events from
``FIELDS``; the processor derives its Spark schema and its required-field checks from the
same tuple (app/processor/schema.py), so the two cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
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
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_event_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def encode(event: dict[str, Any]) -> bytes:
    """The wire form: compact JSON, fields in contract order, UTF-8."""
    ordered = {name: event.get(name) for name in FIELD_NAMES}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
