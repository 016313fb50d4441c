"""How the programs start and stop: one logging set-up for every entry point; SIGTERM
(systemd, the demo) or SIGINT (Ctrl-C) sets an event their main loop watches, so they
stop between steps; and one way to stop a child process (terminate)."""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
from typing import Any


def stop_on_signals(stop: threading.Event) -> None:
    """Route SIGTERM and SIGINT to `stop`.

    Call it again after creating a SparkContext: pyspark installs its own SIGINT handler
    there, which cancels every job and raises KeyboardInterrupt in the middle of whatever
    the main thread was doing.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())


def terminate(process: subprocess.Popen, timeout: float, *, ask_first: bool = True) -> None:
    """Stop a child process and return once it has exited.

    SIGTERM first (the producer flushes, the notifier commits), so it can stop cleanly
    within `timeout` seconds; then SIGKILL. With ask_first=False the caller has already
    asked in its own way (the Spark JVM exits when its stdin closes).
    """
    if process.poll() is not None:
        return
    if ask_first:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# Libraries whose INFO lines drown the programs' own: only their warnings are shown.
CHATTY_LOGGERS = ("kafka", "confluent_kafka", "py4j", "botocore")


def setup_logging(fmt: str = "%(asctime)s %(name)s %(message)s", **options: Any) -> None:
    """The one logging set-up of every entry point: INFO on stderr, chatty libraries at WARN."""
    logging.basicConfig(level=logging.INFO, format=fmt, **options)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
