"""app.lifecycle: the one way every program stops a child, and the one logging set-up."""

from __future__ import annotations

import logging
import subprocess
import sys

from app.lifecycle import CHATTY_LOGGERS, setup_logging, terminate

STOPS_ON_SIGTERM = "import time\nwhile True: time.sleep(0.05)"
IGNORES_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "while True: time.sleep(0.05)"
)
EXITS_ON_EOF = "import sys\nsys.stdin.read()\nsys.exit(7)"


def child(code: str, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], **options)


def test_a_child_that_stops_on_sigterm_is_not_killed():
    process = child(STOPS_ON_SIGTERM)
    terminate(process, timeout=30)
    assert process.returncode == -15


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout():
    process = child(IGNORES_SIGTERM, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "ready\n"  # its handler is in place
    terminate(process, timeout=0.5)
    assert process.returncode == -9


def test_asked_another_way_it_is_only_waited_for():
    process = child(EXITS_ON_EOF, stdin=subprocess.PIPE)
    process.stdin.close()  # how the Spark JVM is asked to exit
    terminate(process, timeout=30, ask_first=False)
    assert process.returncode == 7


def test_an_exited_child_is_left_alone():
    process = child("pass")
    process.wait()
    terminate(process, timeout=1)
    assert process.returncode == 0


def test_logging_is_info_and_the_chatty_libraries_warn_only():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers.clear()
    try:
        setup_logging()
        assert root.level == logging.INFO
        assert root.handlers[0].formatter._fmt == "%(asctime)s %(name)s %(message)s"
        assert [logging.getLogger(n).level for n in CHATTY_LOGGERS] == [logging.WARNING] * 4
        assert CHATTY_LOGGERS == ("kafka", "confluent_kafka", "py4j", "botocore")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
