"""systemd's watchdog for the processor: "alive" only while its query makes progress.

With WatchdogSec= in the unit, systemd sets WATCHDOG_USEC and NOTIFY_SOCKET and restarts
the service when no WATCHDOG=1 arrives for that long. A process that pings from a timer
would look alive with its query stuck in a batch; this one pings only while the query
makes progress:

- it is starting (Spark, migrations): TimeoutStartSec is the limit there, not this;
- it is between batches (no trigger active: waiting for data is healthy), or
- a batch has ended since the last look (batches back to back under load).

A batch that has run for half the watchdog time without ending stops the pings, and
systemd kills and restarts the processor at most one watchdog time later; the restarted
query replays that batch from its checkpoint (exactly once, as after any crash).
Without WATCHDOG_USEC (the demo, tests, a unit without WatchdogSec) nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Liveness:
    """Whether the query has made progress recently enough (a pure rule, tested alone)."""

    def __init__(self, limit_seconds: float) -> None:
        self.limit = limit_seconds
        self.started_at: float | None = None  # None: still starting
        self.progress_at = 0.0
        self.last_batch: int | None = None

    def query_started(self, now: float) -> None:
        self.started_at = self.progress_at = now

    def observe(self, now: float, trigger_active: bool, batch_id: int | None) -> None:
        if not trigger_active or batch_id != self.last_batch:
            self.progress_at = now
        self.last_batch = batch_id

    def alive(self, now: float) -> bool:
        return self.started_at is None or now - self.progress_at < self.limit


def _notify_address(environ: Mapping[str, str]) -> str | None:
    address = environ.get("NOTIFY_SOCKET", "")
    if not address:
        return None
    # An abstract socket is written with a leading @ and bound with a leading NUL.
    return "\0" + address[1:] if address.startswith("@") else address


class Watchdog:
    """Pings systemd every quarter of WatchdogSec while `liveness` says alive."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        usec = int(env.get("WATCHDOG_USEC", "0") or 0)
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID names the process meant to ping; a child (Spark's JVM) inherits the
        # variables but is not it.
        mine = not pid or pid == str(os.getpid())
        self.seconds = usec / 1_000_000 if mine else 0.0
        self.address = _notify_address(env) if self.seconds else None
        self.liveness = Liveness(self.seconds / 2)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reported_stuck = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def tick(self, now: float) -> bool:
        """Send WATCHDOG=1 if the query is alive; True when sent."""
        if not self.enabled:
            return False
        if not self.liveness.alive(now):
            if not self._reported_stuck:
                log.error(
                    "no progress for %.0f s (a batch has not ended): no more watchdog pings, "
                    "systemd will restart the processor",
                    now - self.liveness.progress_at,
                )
                self._reported_stuck = True
            return False
        self._reported_stuck = False
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"WATCHDOG=1", self.address)
        return True

    def start(self) -> None:
        if not self.enabled:
            return
        log.info("systemd watchdog: %.0f s; pinging while the query makes progress", self.seconds)

        def run() -> None:
            while not self._stop.wait(self.seconds / 4):
                self.tick(time.monotonic())

        self.tick(time.monotonic())
        self._thread = threading.Thread(target=run, name="watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
