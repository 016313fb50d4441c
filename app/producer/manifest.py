"""The producer's own account of what it sent: the ground truth to compare ClickHouse with.

Built from the broker's acknowledgements, so an event that failed to send is not in it.
``counts`` holds, per window and page, the valid, on-time, unique events: exactly what
`page_clicks_latest` must show once the processor has read everything. Late events are
kept apart in ``late`` (whether they count depends on the watermark when they arrive),
and rejected ones are counted per reason.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.contract import parse_event_time
from app.producer.faults import DUPLICATE, LATE, VALID, Message


def window_start(event_time: str, window_seconds: float) -> str:
    epoch = parse_event_time(event_time).timestamp()
    start = int(epoch // window_seconds * window_seconds)
    return datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Manifest:
    def __init__(self, window_seconds: float) -> None:
        self.window_seconds = window_seconds
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.late: dict[str, Counter[str]] = defaultdict(Counter)
        self.rejected: Counter[str] = Counter()
        self.duplicates_sent = 0
        self._counted: set[str] = set()

    def acknowledged(self, message: Message) -> None:
        event = message.event
        if message.kind in (VALID, DUPLICATE):
            if message.kind == DUPLICATE:
                self.duplicates_sent += 1
            if event["event_id"] not in self._counted:
                self._counted.add(event["event_id"])
                window = window_start(event["event_time"], self.window_seconds)
                self.counts[window][event["page_url"]] += 1
        elif message.kind == LATE:
            # message.event carries the shifted event_time the broker received.
            window = window_start(event["event_time"], self.window_seconds)
            self.late[window][event["page_url"]] += 1
        else:
            self.rejected[message.kind] += 1

    def to_dict(self) -> dict[str, Any]:
        def plain(table: dict[str, Counter[str]]) -> dict[str, dict[str, int]]:
            return {w: dict(sorted(pages.items())) for w, pages in sorted(table.items())}

        return {
            "window_seconds": self.window_seconds,
            "counted_events": sum(sum(c.values()) for c in self.counts.values()),
            "counts": plain(self.counts),
            "late": plain(self.late),
            "rejected": dict(sorted(self.rejected.items())),
            "duplicates_sent": self.duplicates_sent,
        }

    def write(self, path: str) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        tmp.replace(target)
