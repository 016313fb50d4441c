"""A staged incident: one page's traffic drops to a share of normal for a while.

For demos and for the alert tests: from INCIDENT_START after the producer starts, for
INCIDENT_DURATION, each event on INCIDENT_PAGE is sent with probability
INCIDENT_TRAFFIC_SHARE (0: the page goes silent). The rest of the traffic is untouched,
and the draws come from a random stream of their own, so the traffic model's stream is
the same with or without an incident: only the suppressed events are missing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from app.settings import Settings

# Mixed into the seed, so the incident's draws differ from the traffic's and the faults'.
_STREAM = 0x1C1DE7


@dataclass(frozen=True)
class Incident:
    page: str  # "" stages nothing
    traffic_share: float  # of the page's events still sent while it lasts
    start_seconds: float  # after the producer starts
    duration_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Incident:
        return cls(
            settings.incident_page,
            settings.incident_traffic_share,
            settings.incident_start,
            settings.incident_duration,
        )

    def active(self, elapsed_seconds: float) -> bool:
        return (
            bool(self.page)
            and self.start_seconds <= elapsed_seconds < self.start_seconds + self.duration_seconds
        )


class IncidentFilter:
    """Decides, event by event, whether the incident lets it through."""

    def __init__(self, incident: Incident, seed: int) -> None:
        self.incident = incident
        self.rng = random.Random(seed ^ _STREAM)
        self.suppressed = 0

    def keeps(self, event: dict[str, Any], elapsed_seconds: float) -> bool:
        incident = self.incident
        if event.get("page_url") != incident.page or not incident.active(elapsed_seconds):
            return True
        if self.rng.random() < incident.traffic_share:
            return True
        self.suppressed += 1
        return False
