"""The producer's own account of what it sent: the ground truth to compare ClickHouse with.

Built from the broker's acknowledgements, so an event that failed to send is not in it.
``counts`` holds, per window and page, the valid, on-time, unique events: exactly what
`page_clicks_latest` must show once the processor has read everything. Late events are
kept apart in ``late`` (whether they count depends on the watermark when they arrive),
and rejected ones are counted per reason.

The same counted events give the insights' ground truth: per window, the distinct users,
the sessions that started, the bot sessions that started and the sessions at each funnel
step (app/funnel.py); and per session (one session_id) what its row in `sessions` must
hold once closed, with the traffic model's label (human, crawler or scraper).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.contract import parse_event_time
from app.funnel import FUNNEL_STEPS, funnel_step, is_page_view
from app.producer.faults import DUPLICATE, LATE, VALID, Message


def window_start(event_time: str, window_seconds: float) -> str:
    epoch = parse_event_time(event_time).timestamp()
    start = int(epoch // window_seconds * window_seconds)
    return datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SessionTruth:
    """What one session's counted events add up to (the columns sessions derives)."""

    def __init__(self, user_id: str, label: str, event_time: str, page: str) -> None:
        self.user_id, self.label = user_id, label
        self.start = self.end = event_time
        self.entry_page = self.exit_page = page
        self.events = self.page_views = self.deepest_step = 0
        self.views: Counter[str] = Counter()

    def add(self, event_time: str, page: str, event_type: str | None) -> None:
        # Times are RFC 3339 UTC text of one width: they sort as text. Ties keep the
        # order sent (a session is one user's, so one partition: the offset order).
        if event_time < self.start:
            self.start, self.entry_page = event_time, page
        if event_time >= self.end:
            self.end, self.exit_page = event_time, page
        self.events += 1
        if is_page_view(event_type):
            self.page_views += 1
            self.views[page] += 1
        self.deepest_step = max(self.deepest_step, funnel_step(page, event_type))

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "label": self.label,
            "start": self.start,
            "end": self.end,
            "events": self.events,
            "page_views": self.page_views,
            "max_views_of_one_page": max(self.views.values(), default=0),
            "deepest_step": self.deepest_step,
            "entry_page": self.entry_page,
            "exit_page": self.exit_page,
        }


class Manifest:
    def __init__(self, window_seconds: float, labels: dict[str, str] | None = None) -> None:
        self.window_seconds = window_seconds
        self.labels = labels if labels is not None else {}
        self.sessions: dict[str, SessionTruth] = {}
        self.users: dict[str, set[str]] = defaultdict(set)
        # window -> sessions with an event at funnel step k or later, k = 1..6.
        self.funnel: dict[str, list[set[str]]] = defaultdict(lambda: [set() for _ in FUNNEL_STEPS])
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.late: dict[str, Counter[str]] = defaultdict(Counter)
        self.rejected: Counter[str] = Counter()
        self.duplicates_sent = 0
        self._counted: set[str] = set()
        # A staged incident as it happened: its page and share, and the event times of
        # the first and last event generated while it lasted (app/producer/incident.py).
        self.incident: dict[str, Any] | None = None

    def acknowledged(self, message: Message) -> None:
        event = message.event
        if message.kind in (VALID, DUPLICATE):
            if message.kind == DUPLICATE:
                self.duplicates_sent += 1
            if event["event_id"] not in self._counted:
                self._counted.add(event["event_id"])
                window = window_start(event["event_time"], self.window_seconds)
                self.counts[window][event["page_url"]] += 1
                self._insights(window, event)
        elif message.kind == LATE:
            # message.event carries the shifted event_time the broker received.
            window = window_start(event["event_time"], self.window_seconds)
            self.late[window][event["page_url"]] += 1
        else:
            self.rejected[message.kind] += 1

    def incident_at(self, incident: Any, elapsed_seconds: float, event_time: str) -> None:
        """Note the incident's span in event time while it lasts (an Incident)."""
        if not incident.active(elapsed_seconds):
            return
        if self.incident is None:
            self.incident = {
                "page": incident.page,
                "traffic_share": incident.traffic_share,
                "started_at": event_time,
            }
        self.incident["ended_at"] = event_time

    def _insights(self, window: str, event: dict[str, Any]) -> None:
        self.users[window].add(event["user_id"])
        session_id = event.get("session_id")
        if session_id is None:
            return
        page, event_type, time = event["page_url"], event.get("event_type"), event["event_time"]
        truth = self.sessions.get(session_id)
        if truth is None:
            label = self.labels.get(session_id, "unknown")
            truth = self.sessions[session_id] = SessionTruth(event["user_id"], label, time, page)
        truth.add(time, page, event_type)
        steps = self.funnel[window]
        for step in range(funnel_step(page, event_type)):
            steps[step].add(session_id)

    def insights(self) -> dict[str, dict[str, Any]]:
        """Per window: unique users, sessions and bot sessions started, the funnel."""
        started: dict[str, Counter[str]] = defaultdict(Counter)
        for truth in self.sessions.values():
            window = window_start(truth.start, self.window_seconds)
            started[window]["sessions"] += 1
            started[window]["bot_sessions"] += truth.label not in ("human", "unknown")
        windows = sorted(set(self.users) | set(started))
        return {
            w: {
                "unique_users": len(self.users.get(w, ())),
                "sessions_started": started[w]["sessions"],
                "bot_sessions_started": started[w]["bot_sessions"],
                "funnel": [len(s) for s in self.funnel[w]]
                if w in self.funnel
                else [0] * len(FUNNEL_STEPS),
            }
            for w in windows
        }

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
            "incident": self.incident,
            "insights": self.insights(),
            "sessions": {sid: t.to_dict() for sid, t in sorted(self.sessions.items())},
        }

    def write(self, path: str) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        tmp.replace(target)
