"""The processor's systemd watchdog: pings on a real notify socket, only while alive."""

from __future__ import annotations

import os
import socket

import pytest

from app.watchdog import Liveness, Watchdog


@pytest.fixture
def notify_socket(tmp_path):
    """A datagram socket where systemd's would be (NOTIFY_SOCKET)."""
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.setblocking(False)
        yield path, sock


def received(sock) -> list[bytes]:
    found = []
    while True:
        try:
            found.append(sock.recv(64))
        except BlockingIOError:
            return found


def test_alive_while_starting_between_batches_and_while_batches_end():
    rule = Liveness(limit_seconds=30)
    assert rule.alive(1_000.0)  # starting: TimeoutStartSec's business
    rule.query_started(100.0)
    rule.observe(110.0, trigger_active=True, batch_id=None)  # the first batch runs
    assert rule.alive(129.9)
    assert not rule.alive(130.0)  # 30 s since the start without a batch ending
    rule.observe(131.0, trigger_active=True, batch_id=0)  # it ended; batch 1 runs at once
    assert rule.alive(160.9)
    rule.observe(150.0, trigger_active=True, batch_id=0)  # still batch 1: no progress
    assert not rule.alive(161.0)
    rule.observe(170.0, trigger_active=False, batch_id=1)  # between batches
    rule.observe(500.0, trigger_active=False, batch_id=1)  # idle topic: waiting is healthy
    assert rule.alive(529.9)


def test_pings_the_notify_socket_only_while_the_query_makes_progress(notify_socket):
    path, sock = notify_socket
    dog = Watchdog({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "60000000"})
    assert dog.seconds == 60.0 and dog.liveness.limit == 30.0
    assert dog.tick(0.0) is True  # starting
    dog.liveness.query_started(10.0)
    dog.liveness.observe(11.0, trigger_active=True, batch_id=None)  # the first batch runs
    assert dog.tick(39.9) is True
    assert dog.tick(40.0) is False  # 30 s since the start, no batch ended: silence
    dog.liveness.observe(42.0, trigger_active=True, batch_id=7)
    assert dog.tick(43.0) is True
    assert received(sock) == [b"WATCHDOG=1"] * 3


def test_an_abstract_notify_socket_is_addressed_with_a_nul(tmp_path):
    name = f"clickstream-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.setblocking(False)
        dog = Watchdog({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "10000000"})
        assert dog.tick(0.0) is True
        assert received(sock) == [b"WATCHDOG=1"]


@pytest.mark.parametrize(
    "environ",
    [
        {},  # the demo, tests: no watchdog
        {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "0"},
        {"NOTIFY_SOCKET": "", "WATCHDOG_USEC": "5000000"},
        # Meant for another process (Spark's JVM inherits the variables; so would we).
        {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"},
    ],
)
def test_nothing_is_sent_without_a_watchdog_meant_for_this_process(environ):
    dog = Watchdog(environ)
    assert not dog.enabled
    assert dog.tick(0.0) is False
