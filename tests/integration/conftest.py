"""Real parts for the integration suite: an Apache Kafka broker (KRaft) as a JVM process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaProducer

from app.runtime.broker import LocalBroker, ensure_topic
from tests.conftest import KAFKA_BROKER_JARS, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> Iterator[LocalBroker]:
    if not any(KAFKA_BROKER_JARS.glob("kafka_2.13-*.jar")):
        pytest.fail(f"Kafka broker jars missing in {KAFKA_BROKER_JARS}: run `make setup`")
    local = LocalBroker(f"127.0.0.1:{free_port()}", str(tmp_path_factory.mktemp("kafka")))
    local.start()
    yield local
    local.stop()


@pytest.fixture
def topic(broker) -> str:
    name = f"clicks-{uuid.uuid4().hex[:8]}"
    assert ensure_topic(broker.bootstrap, name, partitions=3) is True
    assert ensure_topic(broker.bootstrap, name, partitions=3) is False  # create-if-missing
    return name


def publish(bootstrap: str, topic: str, values: list[bytes | None]) -> list[tuple[int, int]]:
    """Send raw messages, acknowledged by the broker; their (partition, offset) in order.

    A None value is sent as a tombstone, with a key (Kafka's clients need one of the two).
    """
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        futures = [
            producer.send(topic, key=b"tombstone" if v is None else None, value=v) for v in values
        ]
        producer.flush()
        return [(m.partition, m.offset) for m in (f.get(timeout=30) for f in futures)]
    finally:
        producer.close()
