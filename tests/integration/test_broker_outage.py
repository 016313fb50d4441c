"""ensure_topic against a broker that is down when it is called (the CI chaos run of
2026-12-02: the broker crashed while the processor started, the processor's creation of
the alerts topic gave up after kafka-python's bootstrap timeout, and the processor exited).
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from kafka import KafkaAdminClient

from app.producer.faults import Message
from app.producer.publisher import open_publisher
from app.runtime.broker import BrokerError, LocalBroker, ensure_topic
from tests.conftest import free_port

pytestmark = pytest.mark.integration


def test_ensure_topic_waits_for_a_crashed_broker_to_come_back(tmp_path, caplog):
    broker = LocalBroker(f"127.0.0.1:{free_port()}", str(tmp_path / "kafka"))
    broker.start()
    broker.kill()  # a crash: the port is closed, the log folder stays
    outcome: dict[str, object] = {}

    def create() -> None:
        try:
            outcome["created"] = ensure_topic(broker.bootstrap, "alerts", 1, wait=600.0)
        except Exception as error:  # the test reports it below
            outcome["error"] = error

    caplog.set_level(logging.INFO, logger="app.runtime.broker")
    thread = threading.Thread(target=create, daemon=True)
    thread.start()
    try:
        # The broker stays down for longer than one bootstrap attempt of kafka-python
        # (the failure above): three attempts logged, or the call's end, whichever first.
        deadline = time.monotonic() + 120
        while sum("waiting for Kafka" in r.getMessage() for r in caplog.records) < 3:
            assert thread.is_alive(), f"ensure_topic returned while the broker was down: {outcome}"
            assert time.monotonic() < deadline, "ensure_topic neither waited nor returned"
            time.sleep(0.1)
        broker.start()
        thread.join(300)
        assert not thread.is_alive()
        assert outcome == {"created": True}
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        try:
            assert "alerts" in admin.list_topics()
        finally:
            admin.close()
    finally:
        broker.stop()


def test_ensure_topic_names_the_setting_when_no_broker_answers_in_time():
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(BrokerError) as raised:
        ensure_topic(address, "alerts", 1, wait=3.0)
    assert str(raised.value) == (
        f"KAFKA_BOOTSTRAP_SERVERS: no Kafka broker answered at {address} within 3 s "
        "(creating topic alerts)"
    )


def test_a_stop_during_a_broker_outage_counts_every_send_and_returns(tmp_path):
    """kafka-python's flush() raises when its timeout runs out: before the fix that skipped
    the close (and, in the producer, the manifest), leaving the sends in no count."""
    broker = LocalBroker(f"127.0.0.1:{free_port()}", str(tmp_path / "kafka"))
    broker.start()
    try:
        assert ensure_topic(broker.bootstrap, "clicks", 1) is True
        publisher = open_publisher("kafka-python", broker.bootstrap, "clicks", "none")
        # Events flowing, as when systemd stops the producer: the topic's metadata is known.
        publisher.send(Message(b"u-0", b"{}", "valid", {}))
        deadline = time.monotonic() + 60
        while publisher.stats.sent < 1:
            assert time.monotonic() < deadline, "the first event was never acknowledged"
            time.sleep(0.05)
        broker.kill()
        for n in range(1, 4):
            publisher.send(Message(f"u-{n}".encode(), b"{}", "valid", {}))
        publisher.close(timeout=2)
        assert (publisher.stats.sent, publisher.stats.failed) == (1, 3)
    finally:
        broker.stop()
