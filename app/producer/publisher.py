"""Publishing to Kafka with kafka-python: batched, compressed, acknowledged by all replicas."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kafka import KafkaProducer

from app.producer.faults import Message

log = logging.getLogger(__name__)


@dataclass
class SendStats:
    sent: int = 0
    failed: int = 0
    last_error: str = ""


class Publisher:
    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        compression: str,
        on_ack: Callable[[Message], None] | None = None,
    ) -> None:
        self.topic = topic
        self.stats = SendStats()
        self._on_ack = on_ack
        # Callbacks run on kafka-python's I/O thread; the manifest is not thread-safe.
        self._lock = threading.Lock()
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
        future = self._producer.send(self.topic, key=message.key, value=message.value)
        future.add_callback(self._acked, message)
        future.add_errback(self._failed, message)

    def _acked(self, message: Message, _metadata: object) -> None:
        with self._lock:
            self.stats.sent += 1
            if self._on_ack:
                self._on_ack(message)

    def _failed(self, message: Message, error: Exception) -> None:
        with self._lock:
            self.stats.failed += 1
            self.stats.last_error = repr(error)
        log.warning("send failed (%s): %r", message.kind, error)

    def close(self, timeout: float = 60.0) -> None:
        """Flush what is buffered, then close; every send ends as sent or failed."""
        self._producer.flush(timeout=timeout)
        self._producer.close(timeout=timeout)
