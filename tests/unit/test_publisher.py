"""The two Kafka clients behind one Publisher: configured alike, accounted alike.

The clients themselves are replaced by fakes that record what they were asked and call
back as the real ones do; tests/integration/test_producer.py runs both for real.
"""

from __future__ import annotations

import threading

import confluent_kafka
import pytest

from app.producer import publisher as module
from app.producer.faults import Message
from app.producer.publisher import (
    CLOSE_AT_LEAST_SECONDS,
    ConfluentPublisher,
    KafkaPythonPublisher,
    PublishError,
    open_publisher,
)
from tests.conftest import free_port


def message(n: int, key: bytes | None = b"u-1") -> Message:
    return Message(key, b'{"n":%d}' % n, "valid", {"n": n})


class FakeKafkaPythonProducer:
    """kafka-python: send() returns a future; callbacks fire on its I/O thread."""

    def __init__(self, **config):
        self.config = config
        self.sent: list[tuple] = []
        self.calls: list[tuple] = []
        self.fail = False

    def send(self, topic, key=None, value=None):
        self.sent.append((topic, key, value))
        return FakeFuture(None if not self.fail else RuntimeError("broker gone"))

    def flush(self, timeout=None):
        self.calls.append(("flush", timeout))

    def close(self, timeout=None):
        self.calls.append(("close", timeout))


class FakeFuture:
    def __init__(self, error):
        self.error = error

    def add_callback(self, fn, *args):
        if self.error is None:
            fn(*args, "metadata")

    def add_errback(self, fn, *args):
        if self.error is not None:
            fn(*args, self.error)


class FakeConfluentProducer:
    """confluent-kafka: produce() queues; delivery reports come only from poll/flush."""

    def __init__(self, config):
        self.config = config
        self.calls: list[tuple] = []
        self.queued: list[tuple] = []  # (on_delivery, error)
        self.buffer_full_times = 0
        self.errors: list[confluent_kafka.KafkaError | None] = []  # per produce, in order
        self.left_after_flush = 0

    def list_topics(self, timeout=None):
        self.calls.append(("list_topics", timeout))

    def produce(self, topic, value=None, key=None, on_delivery=None):
        if self.buffer_full_times:
            self.buffer_full_times -= 1
            self.calls.append(("produce refused", value))
            raise BufferError("Local: Queue full")
        self.calls.append(("produce", topic, key, value))
        error = self.errors.pop(0) if self.errors else None
        self.queued.append((on_delivery, error))

    def _serve(self, keep: int = 0) -> None:
        while len(self.queued) > keep:
            on_delivery, error = self.queued.pop(0)
            on_delivery(error, "record")

    def poll(self, timeout=None):
        self.calls.append(("poll", timeout))
        self._serve()
        return 0

    def flush(self, timeout=None):
        self.calls.append(("flush", timeout))
        self._serve(keep=self.left_after_flush)
        self.left_after_flush = 0
        return len(self.queued)

    def purge(self):
        self.calls.append(("purge",))
        purged = confluent_kafka.KafkaError(confluent_kafka.KafkaError._PURGE_QUEUE)
        self.queued = [(on_delivery, purged) for on_delivery, _ in self.queued]


@pytest.fixture
def fakes(monkeypatch):
    made: dict[str, object] = {}

    def kafka_python(**config):
        made["kafka-python"] = FakeKafkaPythonProducer(**config)
        return made["kafka-python"]

    def confluent(config):
        made["confluent-kafka"] = FakeConfluentProducer(config)
        return made["confluent-kafka"]

    monkeypatch.setattr(module, "KafkaProducer", kafka_python)
    monkeypatch.setattr(module.confluent_kafka, "Producer", confluent)
    return made


@pytest.mark.parametrize(
    ("compression", "kafka_python_codec"), [("lz4", "lz4"), ("gzip", "gzip"), ("none", None)]
)
def test_both_clients_are_configured_alike(fakes, compression, kafka_python_codec):
    open_publisher("kafka-python", "k1:9092,k2:9092", "clicks", compression)
    open_publisher("confluent-kafka", "k1:9092,k2:9092", "clicks", compression)
    python_config = fakes["kafka-python"].config
    confluent_config = dict(fakes["confluent-kafka"].config)
    assert confluent_config.pop("logger").name == "confluent_kafka"
    assert confluent_config == {
        "bootstrap.servers": "k1:9092,k2:9092",
        "client.id": "clickstream-producer",
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 20,
        "batch.size": 131072,
        "compression.type": compression,
        "partitioner": "murmur2_random",
    }
    shared = ("bootstrap_servers", "client_id", "acks", "enable_idempotence", "linger_ms")
    assert {name: python_config[name] for name in shared} == {
        "bootstrap_servers": ["k1:9092", "k2:9092"],
        "client_id": "clickstream-producer",
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 20,
    }
    assert (python_config["batch_size"], python_config["compression_type"]) == (
        131072,
        kafka_python_codec,
    )


def test_the_client_named_is_the_one_opened(fakes):
    assert type(open_publisher("kafka-python", "k:1", "t", "lz4")) is KafkaPythonPublisher
    assert type(open_publisher("confluent-kafka", "k:1", "t", "lz4")) is ConfluentPublisher
    with pytest.raises(ValueError) as error:
        open_publisher("franz-go", "k:1", "t", "lz4")
    assert str(error.value) == (
        "unknown Kafka client 'franz-go': expected one of kafka-python, confluent-kafka"
    )


def test_confluent_asks_the_cluster_before_it_sends(fakes):
    open_publisher("confluent-kafka", "k:1", "t", "lz4")
    assert fakes["confluent-kafka"].calls == [("list_topics", 30.0)]


def test_kafka_python_counts_acks_and_failures(fakes, monkeypatch):
    monkeypatch.setattr(module.time, "monotonic", lambda: 100.0)  # a flush that took no time
    acked = []
    publisher = open_publisher("kafka-python", "k:1", "clicks", "lz4", on_ack=acked.append)
    producer = fakes["kafka-python"]
    publisher.send(message(1))
    producer.fail = True
    publisher.send(message(2, key=None))
    publisher.close(timeout=5)
    assert producer.sent == [("clicks", b"u-1", b'{"n":1}'), ("clicks", None, b'{"n":2}')]
    assert (publisher.stats.sent, publisher.stats.failed) == (1, 1)
    assert publisher.stats.last_error == "RuntimeError('broker gone')"
    assert acked == [message(1)]
    assert producer.calls == [("flush", 5), ("close", 5)]


def test_confluent_serves_delivery_reports_on_every_send(fakes):
    acked = []
    publisher = open_publisher("confluent-kafka", "k:1", "clicks", "lz4", on_ack=acked.append)
    producer = fakes["confluent-kafka"]
    producer.errors = [None, confluent_kafka.KafkaError(confluent_kafka.KafkaError._MSG_TIMED_OUT)]
    publisher.send(message(1))
    assert (publisher.stats.sent, acked) == (1, [message(1)])
    publisher.send(message(2, key=None))
    assert (publisher.stats.sent, publisher.stats.failed) == (1, 1)
    assert publisher.stats.last_error.startswith("KafkaException(KafkaError{code=_MSG_TIMED_OUT")
    assert acked == [message(1)]  # the manifest hears of acknowledged messages only
    assert producer.calls == [
        ("list_topics", 30.0),
        ("produce", "clicks", b"u-1", b'{"n":1}'),
        ("poll", 0),
        ("produce", "clicks", None, b'{"n":2}'),
        ("poll", 0),
    ]


def test_confluent_waits_for_room_when_its_local_queue_is_full(fakes):
    publisher = open_publisher("confluent-kafka", "k:1", "clicks", "lz4")
    producer = fakes["confluent-kafka"]
    producer.buffer_full_times = 2
    publisher.send(message(7))
    assert producer.calls[1:] == [
        ("produce refused", b'{"n":7}'),
        ("poll", 0.1),
        ("produce refused", b'{"n":7}'),
        ("poll", 0.1),
        ("produce", "clicks", b"u-1", b'{"n":7}'),
        ("poll", 0),
    ]
    assert (publisher.stats.sent, publisher.stats.failed) == (1, 0)


def test_confluent_close_flushes_and_counts_what_the_deadline_left_as_failed(fakes):
    acked = []
    publisher = open_publisher("confluent-kafka", "k:1", "clicks", "lz4", on_ack=acked.append)
    producer = fakes["confluent-kafka"]
    producer.poll = lambda timeout=None: 0  # nothing acknowledged before close
    for n in range(5):
        publisher.send(message(n))
    producer.left_after_flush = 2
    publisher.close(timeout=60)
    assert producer.calls[-3:] == [("flush", 60), ("purge",), ("flush", 0)]
    assert (publisher.stats.sent, publisher.stats.failed) == (3, 2)
    assert acked == [message(0), message(1), message(2)]
    assert publisher.stats.last_error.startswith("KafkaException(KafkaError{code=_PURGE_QUEUE")


def test_confluent_close_within_the_deadline_purges_nothing(fakes):
    publisher = open_publisher("confluent-kafka", "k:1", "clicks", "lz4")
    producer = fakes["confluent-kafka"]
    publisher.send(message(1))
    publisher.close(timeout=60)
    assert producer.calls[-1] == ("flush", 60)
    assert (publisher.stats.sent, publisher.stats.failed) == (1, 0)


def test_confluent_without_a_broker_stops_at_start():
    bootstrap = f"127.0.0.1:{free_port()}"
    with pytest.raises(PublishError) as error:
        ConfluentPublisher(bootstrap, "clicks", "lz4", connect_timeout=1)
    assert str(error.value).startswith("no broker answered within 1s: Failed to get metadata: ")
    assert isinstance(error.value, module.PUBLISH_ERRORS)


class SlowFlush(FakeKafkaPythonProducer):
    """A flush that uses up time on a clock the test owns, then times out as the real one."""

    def __init__(self, clock, **config):
        super().__init__(**config)
        self.clock = clock
        self._sender = self  # kafka-python's sender thread: force_close() and join()

    def force_close(self):
        self.calls.append(("force_close",))

    def join(self, timeout=None):
        self.calls.append(("join", timeout))

    def flush(self, timeout=None):
        super().flush(timeout)
        self.clock[0] += timeout
        from kafka.errors import KafkaTimeoutError

        raise KafkaTimeoutError("flush timed out")


def test_kafka_python_flush_and_close_share_one_deadline(fakes, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    publisher = open_publisher("kafka-python", "k:1", "clicks", "lz4")
    publisher._producer = SlowFlush(clock)
    publisher.close(timeout=60)
    # The flush had the whole minute and used it: close gets what is left, at least the
    # moment needed to fail what is still buffered, never a second minute.
    assert publisher._producer.calls == [
        ("flush", 60.0),
        ("force_close",),
        ("join", CLOSE_AT_LEAST_SECONDS),
        ("close", CLOSE_AT_LEAST_SECONDS),
    ]


class HeldFuture:
    """A kafka-python future the test settles when it likes (the broker's answer)."""

    def __init__(self):
        self.callbacks: list[tuple] = []
        self.errbacks: list[tuple] = []

    def add_callback(self, fn, *args):
        self.callbacks.append((fn, args))

    def add_errback(self, fn, *args):
        self.errbacks.append((fn, args))

    def succeed(self):
        for fn, args in self.callbacks:
            fn(*args, "metadata")

    def fail(self, error):
        for fn, args in self.errbacks:
            fn(*args, error)


def test_kafka_python_waits_while_too_many_records_are_unacknowledged(fakes, monkeypatch):
    # kafka-python 3.0 has no buffer_memory: without a bound of our own its accumulator
    # grows as long as the program generates faster than it sends (976 MiB in 30 s flat
    # out on the bench). librdkafka refuses past 100,000 queued; this waits the same way.
    futures: list[HeldFuture] = []
    publisher = KafkaPythonPublisher("k:1", "clicks", "lz4", max_pending=2)
    producer = fakes["kafka-python"]
    monkeypatch.setattr(
        producer, "send", lambda *a, **k: futures.append(HeldFuture()) or futures[-1]
    )
    publisher.send(message(1))
    publisher.send(message(2))
    third = threading.Thread(target=publisher.send, args=(message(3),))
    third.start()
    third.join(0.5)
    assert third.is_alive() and len(futures) == 2  # waiting for room, not sending
    futures[0].fail(RuntimeError("broker gone"))  # a failure makes room as an ack does
    third.join(5)
    assert not third.is_alive() and len(futures) == 3
    futures[1].succeed()
    futures[2].succeed()
    assert (publisher.stats.sent, publisher.stats.failed) == (2, 1)
    publisher.send(message(4))  # the room came back: no wait
    assert len(futures) == 4


def test_kafka_python_gives_back_the_room_of_a_send_that_raised(fakes, monkeypatch):
    publisher = KafkaPythonPublisher("k:1", "clicks", "lz4", max_pending=1)
    producer = fakes["kafka-python"]

    def refuse(*args, **kwargs):
        raise module.KafkaTimeoutError("no metadata")

    monkeypatch.setattr(producer, "send", refuse)
    raised = []

    def send_three():  # each raises; none may keep the one place
        for n in range(3):
            with pytest.raises(module.KafkaTimeoutError):
                publisher.send(message(n))
            raised.append(n)

    # In a thread, so a send that waits forever fails the test instead of hanging it.
    sender = threading.Thread(target=send_three, daemon=True)
    sender.start()
    sender.join(5)
    assert raised == [0, 1, 2]


def test_kafka_python_gives_back_the_room_when_the_ack_handler_raises(fakes, monkeypatch):
    futures: list[HeldFuture] = []

    def broken_manifest(_message):
        raise OSError("disk full")

    publisher = KafkaPythonPublisher("k:1", "clicks", "lz4", broken_manifest, max_pending=1)
    producer = fakes["kafka-python"]
    monkeypatch.setattr(
        producer, "send", lambda *a, **k: futures.append(HeldFuture()) or futures[-1]
    )
    publisher.send(message(1))
    with pytest.raises(OSError, match="disk full"):  # kafka-python logs what a callback raises
        futures[0].succeed()
    sender = threading.Thread(target=publisher.send, args=(message(2),), daemon=True)
    sender.start()
    sender.join(5)
    assert not sender.is_alive() and len(futures) == 2
