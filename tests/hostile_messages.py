"""A seeded generator of hostile Kafka messages, each with what the job must make of it.

Every message comes with its expected fate: ``COUNTED`` (with the window and page it
counts in), ``DUPLICATE``, ``LATE``, a reject reason, or ``ANY_REJECT`` where the exact
reason is not the point (random bytes). The fuzz test sends thousands of them through the
real query and checks each fate, and the accounting identity over all of them.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.contract import EVENT_TYPES, FIELDS, encode, format_event_time

COUNTED, DUPLICATE, LATE, ANY_REJECT = "counted", "duplicate", "late", "any_reject"

PAGES = [
    "/",
    "/cart",
    "/checkout",
    "/products/1001",
    "/category/b\u00fccher",
    '/search?q=%7B%7D{}[]"',
    "/\u65e5\u672c/\u2603",
    "/emoji/\U0001f600",
    "/rtl/\u05e9\u05dc\u05d5\u05dd",
    "/combining/e\u0301",
]
# A value of each JSON type, to put where the contract wants another.
WRONG_VALUES = {
    "string": [42, 4.5, True, [], {}, ["x"], {"a": "b"}, 10**30],
    "int": ["1", 1.5, True, [], {}, 10**30, 1e300],
    "timestamp": [1764417600, 1.5, True, [], {}],
}


@dataclass(frozen=True)
class Message:
    value: bytes | None
    fate: str
    window: datetime | None = None  # COUNTED: the window it counts in
    page: str | None = None


def _window(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


class HostileStream:
    """Messages in a seeded order. ``now`` anchors every timestamp."""

    def __init__(self, seed: int, now: datetime, spread_seconds: float = 3600) -> None:
        self.random = random.Random(seed)
        self.now = now
        self.spread_seconds = spread_seconds  # valid events fall in [now - spread, now]
        self.valid: list[dict] = []  # what duplicates copy
        self._serial = 0

    def move_to(self, now: datetime, spread_seconds: float) -> None:
        """Start a new round: later, narrower, and duplicating only its own events."""
        self.now, self.spread_seconds, self.valid = now, spread_seconds, []

    def _event(self, at: datetime | None = None) -> dict:
        r = self.random
        self._serial += 1
        at = at or self.now - timedelta(seconds=r.uniform(0, self.spread_seconds))
        event = {
            "event_id": str(uuid.UUID(int=r.getrandbits(128), version=4)),
            "schema_version": r.choice([1, 1, 1, None]),
            "event_time": format_event_time(at),
            "user_id": r.choice(["u-1", "\u00fcser", "\U0001f916-bot", "x" * 200]),
            "session_id": r.choice(["s-1", None, ""]),
            "page_url": r.choice(PAGES),
            "event_type": r.choice([*EVENT_TYPES, None]),
            "referrer": r.choice([None, "https://example.com/?a=1&b=\u00e9", ""]),
            "user_agent": r.choice(["Mozilla/5.0", "curl/8", None]),
            "device": r.choice(["desktop", "mobile", None]),
            "country": r.choice(["DE", "JP", None]),
        }
        return event

    def _counted(self, event: dict, value: bytes | None = None) -> Message:
        self.valid.append(event)
        at = datetime.fromisoformat(event["event_time"].replace("Z", "+00:00")).astimezone(UTC)
        return Message(value or encode(event), COUNTED, _window(at), event["page_url"])

    def next(self) -> Message:
        """One message of a randomly chosen kind."""
        kinds = [
            (30, self.valid_event),
            (8, self.duplicate),
            (6, self.random_bytes),
            (6, self.truncated),
            (4, self.nested),
            (10, self.wrong_type),
            (4, self.huge_number),
            (3, self.byte_order_mark),
            (3, self.duplicate_keys),
            (8, self.odd_timestamp),
            (2, self.tombstone),
            (2, self.oversized),
            (6, self.bad_page),
            (3, self.empty_user),
            (3, self.concatenated),
            (2, self.missing_field),
        ]
        total = sum(weight for weight, _ in kinds)
        pick = self.random.uniform(0, total)
        for weight, make in kinds:
            pick -= weight
            if pick <= 0:
                return make()
        return kinds[-1][1]()

    # --- what counts

    def valid_event(self) -> Message:
        r = self.random
        event = self._event()
        style = r.randrange(4)
        if style == 0:  # the same instant with a +05:30 offset
            at = datetime.fromisoformat(event["event_time"].replace("Z", "+00:00"))
            local = at + timedelta(hours=5, minutes=30)
            event["event_time"] = local.strftime("%Y-%m-%dT%H:%M:%S.") + (
                f"{local.microsecond // 1000:03d}+05:30"
            )
        elif style == 1:  # pretty-printed, keys in another order
            keys = list(event)
            r.shuffle(keys)
            value = json.dumps({k: event[k] for k in keys}, indent=2).encode()
            return self._counted(event, value)
        elif style == 2:  # a little in the future: inside MAX_FUTURE_SKEW
            event["event_time"] = format_event_time(self.now + timedelta(seconds=r.uniform(1, 200)))
        return self._counted(event)

    def duplicate(self) -> Message:
        if not self.valid:
            return self.valid_event()
        original = self.random.choice(self.valid)
        spelling = self.random.choice([str.upper, str.lower, str])
        return Message(encode({**original, "event_id": spelling(original["event_id"])}), DUPLICATE)

    # --- what is rejected

    def random_bytes(self) -> Message:
        length = self.random.randrange(0, 600)
        return Message(bytes(self.random.getrandbits(8) for _ in range(length)), ANY_REJECT)

    def truncated(self) -> Message:
        whole = encode(self._event())
        return Message(whole[: self.random.randrange(0, len(whole) - 1)], "malformed_json")

    def nested(self) -> Message:
        event = self._event()
        if self.random.random() < 0.5:
            return Message(json.dumps({"event": event}).encode(), "missing_event_id")
        return Message(json.dumps([event, event]).encode(), "malformed_json")

    def wrong_type(self) -> Message:
        event = self._event()
        field = self.random.choice(FIELDS)
        value = self.random.choice(WRONG_VALUES[field.kind])
        return Message(
            json.dumps({**event, field.name: value}).encode(), f"wrong_type_{field.name}"
        )

    def huge_number(self) -> Message:
        event = self._event()
        text = encode({**event, "schema_version": 1}).replace(
            b'"schema_version":1', b'"schema_version":' + self.random.choice([b"1e999", b"9" * 400])
        )
        return Message(text, "wrong_type_schema_version")

    def byte_order_mark(self) -> Message:
        return Message("\ufeff".encode() + encode(self._event()), "malformed_json")

    def duplicate_keys(self) -> Message:
        text = encode(self._event())
        return Message(text[:-1] + b',"page_url":"/other"}', "malformed_json")

    def odd_timestamp(self) -> Message:
        event = self._event()
        text, reason = self.random.choice(
            [
                ("9999-12-31T23:59:59.999Z", "future_event_time"),
                (format_event_time(self.now + timedelta(minutes=30)), "future_event_time"),
                ("0001-01-01T00:00:00.000Z", "expired_event_time"),
                ("1970-01-01T00:00:00.000Z", "expired_event_time"),
                (format_event_time(self.now - timedelta(days=120)), "expired_event_time"),
                ("2026-02-30T00:00:00.000Z", "invalid_event_time"),
                ("2026-11-29 12:00:00", "invalid_event_time"),
                ("yesterday", "invalid_event_time"),
                ("", "invalid_event_time"),
                ("2026-11-29T25:00:00Z", "invalid_event_time"),
            ]
        )
        return Message(encode({**event, "event_time": text}), reason)

    def tombstone(self) -> Message:
        return Message(None, "null_value")

    def oversized(self) -> Message:
        event = self._event()
        return Message(encode({**event, "referrer": "r" * 5000}), "oversized")

    def bad_page(self) -> Message:
        event = self._event()
        page, reason = self.random.choice(
            [
                ("", "empty_page_url"),
                ("   ", "empty_page_url"),
                ("/cart\u0000", "invalid_page_url"),
                ("/a\nb", "invalid_page_url"),
                ("/del\u007f", "invalid_page_url"),
                ("cart", "invalid_page_url"),
                ("/" + "p" * 4000, "oversized"),  # over MAX_EVENT_BYTES: that check is first
                ("/" + "p" * 2100, "page_url_too_long"),
            ]
        )
        return Message(encode({**event, "page_url": page}), reason)

    def empty_user(self) -> Message:
        event = self._event()
        return Message(encode({**event, "user_id": self.random.choice(["", " "])}), "empty_user_id")

    def concatenated(self) -> Message:
        first, second = encode(self._event()), encode(self._event())
        glue = self.random.choice([b"", b" ", b"\n", b","])
        return Message(first + glue + second, "malformed_json")

    def missing_field(self) -> Message:
        event = self._event()
        field = self.random.choice([f for f in FIELDS if f.required])
        if self.random.random() < 0.5:
            event = {k: v for k, v in event.items() if k != field.name}
        else:
            event = {**event, field.name: None}
        return Message(json.dumps(event).encode(), f"missing_{field.name}")

    # --- late, for a second round

    def late_event(self, at: datetime) -> Message:
        return Message(encode(self._event(at)), LATE)
