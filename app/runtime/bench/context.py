"""What every stage of the bench shares: the settings, its folders, its child processes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from app import settings as settings_module
from app.runtime.bench.procs import Children
from app.settings import Settings


@dataclass
class Bench:
    settings: Settings
    root: Path
    quick: bool
    # A step passes only if its p99 freshness is at most this many seconds.
    freshness_limit: float = 5.0
    children: Children = field(default_factory=Children)
    started: float = field(default_factory=time.monotonic)

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap_servers

    def say(self, text: str) -> None:
        """A progress line, stamped with the seconds since the bench started."""
        print(f"[{time.monotonic() - self.started:6.0f}s] {text}", flush=True)

    def producer_env(self, client: str, rate: float, seconds: float, topic: str) -> dict[str, str]:
        """The producer program's environment: these settings, this client, rate and topic."""
        run = replace(
            self.settings,
            producer_client=client,
            producer_rate=rate,
            producer_duration=seconds,
            kafka_topic=topic,
        )
        return settings_module.to_environ(run)
