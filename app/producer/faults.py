"""Fault injection: the bad input a real pipeline meets, each kind at its own rate.

At most one fault per event. Faults draw from their own random stream, so turning a
fault rate up or down never changes the underlying traffic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from app.contract import encode, format_event_time, parse_event_time

# Kinds of message the producer sends; all but VALID and DUPLICATE must not be counted.
VALID = "valid"
MALFORMED_JSON = "malformed_json"
NULL_USER = "missing_user_id"
NULL_PAGE = "missing_page_url"
LATE = "late"
DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Message:
    key: bytes | None
    value: bytes
    kind: str
    event: dict[str, Any]


@dataclass(frozen=True)
class FaultRates:
    malformed: float = 0.0
    null_user: float = 0.0
    null_page: float = 0.0
    late: float = 0.0
    duplicate: float = 0.0
    late_delay_seconds: float = 600.0


def _message(event: dict[str, Any], kind: str) -> Message:
    key = event["user_id"].encode() if event.get("user_id") else None
    return Message(key, encode(event), kind, event)


class FaultInjector:
    def __init__(self, rates: FaultRates, seed: int) -> None:
        self.rates = rates
        self.rng = random.Random(f"faults-{seed}")
        # Duplicates are re-sent a few messages later, as a retrying client would.
        self._redeliver: list[tuple[int, Message]] = []
        self._sent = 0
        # The faults in the order their shares are laid out on [0, 1). One with rate 0
        # covers no part of it, so leaving it out changes no outcome, only the cost.
        self._kinds = tuple(
            (kind, rate)
            for kind, rate in (
                (MALFORMED_JSON, rates.malformed),
                (NULL_USER, rates.null_user),
                (NULL_PAGE, rates.null_page),
                (LATE, rates.late),
                (DUPLICATE, rates.duplicate),
            )
            if rate > 0
        )

    def apply(self, event: dict[str, Any]) -> list[Message]:
        """The messages to send for one generated event (one, or two with a duplicate)."""
        self._sent += 1
        out = []
        if self._redeliver:
            out = [m for due, m in self._redeliver if due <= self._sent]
            if out:
                self._redeliver = [(due, m) for due, m in self._redeliver if due > self._sent]
        # One draw per event, whatever the rates: the fault stream stays the same.
        point = self.rng.random()
        for kind, rate in self._kinds:
            if point < rate:
                out.insert(0, self._fault(kind, event))
                break
            point -= rate
        else:
            out.insert(0, _message(event, VALID))
        return out

    def pending(self) -> list[Message]:
        """Duplicates not yet re-sent; the producer sends them before it stops."""
        out = [m for _, m in self._redeliver]
        self._redeliver = []
        return out

    def _fault(self, kind: str, event: dict[str, Any]) -> Message:
        if kind == MALFORMED_JSON:
            valid = encode(event)
            # Cut the JSON short: what a crashed client or a bad proxy leaves behind.
            return Message(None, valid[: len(valid) // 2], kind, event)
        if kind == NULL_USER:
            return _message({**event, "user_id": None}, kind)
        if kind == NULL_PAGE:
            return _message({**event, "page_url": None}, kind)
        if kind == LATE:
            moment = parse_event_time(event["event_time"]) - timedelta(
                seconds=self.rates.late_delay_seconds
            )
            return _message({**event, "event_time": format_event_time(moment)}, kind)
        # DUPLICATE: the original now, the same bytes again a few messages later.
        original = _message(event, VALID)
        copy = Message(original.key, original.value, DUPLICATE, event)
        self._redeliver.append((self._sent + self.rng.randint(1, 20), copy))
        return original
