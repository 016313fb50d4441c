"""How the long-running programs learn they should stop: SIGTERM (systemd, the demo) or
SIGINT (Ctrl-C) sets an event their main loop watches, so they stop between steps."""

from __future__ import annotations

import signal
import threading


def stop_on_signals(stop: threading.Event) -> None:
    """Route SIGTERM and SIGINT to `stop`.

    Call it again after creating a SparkContext: pyspark installs its own SIGINT handler
    there, which cancels every job and raises KeyboardInterrupt in the middle of whatever
    the main thread was doing.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
