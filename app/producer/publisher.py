"""Publishing to Kafka: batched, compressed, acknowledged by all replicas.

PRODUCER_CLIENT chooses the library: kafka-python (pure Python, the design's choice) or
confluent-kafka (librdkafka, in C). Both are set up alike (acks=all, idempotence, the
PRODUCER_COMPRESSION codec, linger 20 ms, batches of 128 KiB, the message's key and bytes
as given) and behind the one `Publisher` interface: every message sent ends as sent
(acknowledged by the broker, and only then passed to ``on_ack``, which feeds the
manifest) or failed, by the time ``close`` returns.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import confluent_kafka
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from app.producer.faults import Message
from app.settings import PRODUCER_CLIENTS

log = logging.getLogger(__name__)

# What close() gets even when flush() used the whole deadline: time to fail what is left.
CLOSE_AT_LEAST_SECONDS = 1.0
# Records handed to kafka-python and not yet acknowledged or failed, at most. Each costs
# about 3 KB of Python objects (the record, its future, its message for the manifest):
# 100,000, librdkafka's bound, peaked at 338 MiB flat out; 10,000, about a second of what
# the client sends here, at 75 MiB and the same rate (make bench, stage b).
MAX_PENDING = 10_000


class PublishError(RuntimeError):
    """The client cannot publish at all (no broker answers)."""


# What the clients raise when publishing is impossible; the program exits 1 on these.
PUBLISH_ERRORS = (KafkaError, confluent_kafka.KafkaException, PublishError)


@dataclass
class SendStats:
    sent: int = 0
    failed: int = 0
    last_error: str = ""


class Publisher(Protocol):
    stats: SendStats

    def send(self, message: Message) -> None:
        """Queue one message; its acknowledgement or failure is counted later."""

    def close(self, timeout: float = 60.0) -> None:
        """Flush what is buffered, then close; every send ends as sent or failed."""


def open_publisher(
    client: str,
    bootstrap_servers: str,
    topic: str,
    compression: str,
    on_ack: Callable[[Message], None] | None = None,
) -> Publisher:
    """The publisher of the PRODUCER_CLIENT named."""
    if client == "kafka-python":
        return KafkaPythonPublisher(bootstrap_servers, topic, compression, on_ack)
    if client == "confluent-kafka":
        return ConfluentPublisher(bootstrap_servers, topic, compression, on_ack)
    expected = ", ".join(PRODUCER_CLIENTS)
    raise ValueError(f"unknown Kafka client {client!r}: expected one of {expected}")


class _Deliveries:
    """The accounting both clients share: counts, and the manifest fed from acks only."""

    def __init__(self, topic: str, on_ack: Callable[[Message], None] | None) -> None:
        self.topic = topic
        self.stats = SendStats()
        self._on_ack = on_ack
        # kafka-python calls back on its I/O thread; the manifest is not thread-safe.
        self._lock = threading.Lock()

    def _acked(self, message: Message, _metadata: object = None) -> None:
        with self._lock:
            self.stats.sent += 1
            if self._on_ack:
                self._on_ack(message)

    def _failed(self, message: Message, error: Exception) -> None:
        with self._lock:
            self.stats.failed += 1
            self.stats.last_error = repr(error)
        log.warning("send failed (%s): %r", message.kind, error)


class KafkaPythonPublisher(_Deliveries):
    """kafka-python: send() returns a future; its callbacks run on the client's I/O thread.

    kafka-python 3.0 has no buffer_memory: its accumulator takes every record it is given,
    so a program that generates faster than the client sends grew to 976 MiB in 30 s flat
    out. send() therefore waits while MAX_PENDING records are unanswered, as confluent's
    send waits for room in librdkafka's queue; a record that fails frees its place too,
    so a broker outage holds sends up to delivery_timeout_ms, never forever.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        compression: str,
        on_ack: Callable[[Message], None] | None = None,
        max_pending: int = MAX_PENDING,
    ) -> None:
        super().__init__(topic, on_ack)
        self._room = threading.BoundedSemaphore(max_pending)
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers.split(","),
            client_id="clickstream-producer",
            acks="all",
            # Idempotence makes the client's own retries safe: no duplicates from them.
            enable_idempotence=True,
            # A broker outage costs no retries: records wait in the buffer while the broker
            # is unreachable, and only the requests in flight when it went fail, once.
            # delivery_timeout_ms bounds how long a restart may take before sends fail.
            retries=10,
            retry_backoff_ms=200,
            delivery_timeout_ms=120_000,
            # kafka-python doubles the wait between reconnects up to 30 s by default, so a
            # broker back after a 20 s restart could sit unused for up to 30 s more while
            # events pile up and the delivery timeout runs. Try at least once a second.
            reconnect_backoff_max_ms=1000,
            linger_ms=20,
            batch_size=128 * 1024,
            compression_type=None if compression == "none" else compression,
        )

    def send(self, message: Message) -> None:
        self._room.acquire()
        try:
            future = self._producer.send(self.topic, key=message.key, value=message.value)
        except BaseException:
            self._room.release()  # never queued: it has no answer to wait for
            raise
        future.add_callback(self._acked, message)
        future.add_errback(self._failed, message)

    # The place is given back whatever the accounting does: a place lost to an exception
    # in a callback would never come back, and the program would stop sending for good.
    def _acked(self, message: Message, _metadata: object = None) -> None:
        try:
            super()._acked(message, _metadata)
        finally:
            self._room.release()

    def _failed(self, message: Message, error: Exception) -> None:
        try:
            super()._failed(message, error)
        finally:
            self._room.release()

    def close(self, timeout: float = 60.0) -> None:
        """Flush what is buffered, then close; every send ends as sent or failed.

        One deadline for both (the unit's TimeoutStopSec must cover it): kafka-python's
        flush raises when its time runs out, and close then fails what is left.
        """
        deadline = time.monotonic() + timeout
        try:
            self._producer.flush(timeout=timeout)
        except KafkaTimeoutError:
            log.warning("stop: events still unsent after %g s are counted as failed", timeout)
            # kafka-python's close() flushes first and would raise the same way. Stop its
            # sender without sending (kafka-python 3.0's own force close, pinned): every
            # unsent record's future fails, so each is counted. Then close has nothing left.
            sender = self._producer._sender
            sender.force_close()
            sender.join(max(CLOSE_AT_LEAST_SECONDS, deadline - time.monotonic()))
        self._producer.close(timeout=max(CLOSE_AT_LEAST_SECONDS, deadline - time.monotonic()))


class ConfluentPublisher(_Deliveries):
    """confluent-kafka: delivery reports arrive only from poll() and flush(), on this thread.

    librdkafka retries an idempotent produce until ``message.timeout.ms`` (5 minutes by
    default) has passed, so it rides through a broker restart as it stands.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        compression: str,
        on_ack: Callable[[Message], None] | None = None,
        connect_timeout: float = 30.0,
    ) -> None:
        super().__init__(topic, on_ack)
        self._producer = confluent_kafka.Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "client.id": "clickstream-producer",
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 20,
                "batch.size": 128 * 1024,
                "compression.type": compression,
                # kafka-python's partitioner (murmur2 of the key, as Java's): a user's
                # events land in the same partition whichever client sent them.
                "partitioner": "murmur2_random",
                # librdkafka's own lines through logging (served by poll), not raw stderr.
                "logger": logging.getLogger("confluent_kafka"),
            }
        )
        # kafka-python stops at start when no broker answers; this client would only
        # queue, so ask the cluster for its metadata first.
        try:
            self._producer.list_topics(timeout=connect_timeout)
        except confluent_kafka.KafkaException as exc:
            raise PublishError(
                f"no broker answered within {connect_timeout:g}s: {exc.args[0].str()}"
            ) from None

    def send(self, message: Message) -> None:
        delivered = functools.partial(self._delivered, message)
        while True:
            try:
                self._producer.produce(
                    self.topic, value=message.value, key=message.key, on_delivery=delivered
                )
                break
            except BufferError:
                # The local queue is full: serve delivery reports until there is room.
                self._producer.poll(0.1)
        # Serve the reports that are in, so the counts move and the queue drains.
        self._producer.poll(0)

    def _delivered(
        self,
        message: Message,
        error: confluent_kafka.KafkaError | None,
        _record: confluent_kafka.Message,
    ) -> None:
        if error is None:
            self._acked(message)
        else:
            self._failed(message, confluent_kafka.KafkaException(error))

    def close(self, timeout: float = 60.0) -> None:
        """Flush what is buffered, then close; every send ends as sent or failed."""
        if self._producer.flush(timeout) > 0:
            # Past the deadline: drop what is left; its reports come back as failed.
            self._producer.purge()
            self._producer.flush(0)
