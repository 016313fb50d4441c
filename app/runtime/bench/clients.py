"""The bench's Python producers, each run as a process of its own.

    python -m app.runtime.bench.clients generate --count N --out FILE [--seed S]
    python -m app.runtime.bench.clients send --client confluent-kafka --events FILE \
        --bootstrap HOST:PORT --topic T [--skip K] [--limit L]

`generate` writes N events of the traffic model (app/producer/traffic.py), one a line:
the key (user_id), a tab, the event as app.contract.encode writes it (compact JSON never
holds a raw tab or newline). `send` loads them first, then publishes them with one client
configured as the producer program configures its own (acks=all, idempotence, lz4,
linger 20 ms, the same batch size) and prints one JSON line: how many were acknowledged,
and the seconds from the first send to the last acknowledgement.

A process of its own for each: the bench reads its peak memory when it exits, and the
events it holds never count against the driver's.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from app.contract import encode
from app.producer.traffic import TrafficModel
from app.settings import PRODUCER_CLIENTS

CLIENTS = PRODUCER_CLIENTS
# As app/producer/publisher.py: acks=all, idempotence, lz4, linger 20 ms, 128 KiB batches.
LINGER_MS = 20
BATCH_SIZE = 128 * 1024

Record = tuple[bytes, bytes]


def generate(count: int, out: Path, seed: int) -> dict:
    model = TrafficModel(seed, run_nonce=secrets.randbits(128))
    total = 0
    with open(out, "wb") as handle:
        for _ in range(count):
            event = model.next_event(datetime.now(UTC))
            value = encode(event)
            total += len(value)
            handle.write(event["user_id"].encode() + b"\t" + value + b"\n")
    return {"events": count, "mean_bytes": round(total / count, 1) if count else 0.0}


def load(path: Path, skip: int = 0, limit: int = 0) -> list[Record]:
    records = []
    with open(path, "rb") as handle:
        for number, line in enumerate(handle):
            if number < skip:
                continue
            if limit and len(records) >= limit:
                break
            key, value = line.rstrip(b"\n").split(b"\t", 1)
            records.append((key, value))
    return records


class Acks:
    """Acknowledgements as the client reports them, and when the last one came."""

    def __init__(self) -> None:
        self.sent = self.failed = 0
        self.last = 0.0
        self.error = ""
        self._lock = threading.Lock()

    def done(self, error: object | None) -> None:
        with self._lock:
            if error is None:
                self.sent += 1
            else:
                self.failed += 1
                self.error = repr(error)
            self.last = time.monotonic()


def send_kafka_python(bootstrap: str, topic: str, records: Sequence[Record], acks: Acks) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        acks="all",
        enable_idempotence=True,
        linger_ms=LINGER_MS,
        batch_size=BATCH_SIZE,
        compression_type="lz4",
    )
    try:
        producer.partitions_for(topic)  # connect and fetch metadata before the clock starts
        started = time.monotonic()
        for key, value in records:
            future = producer.send(topic, key=key, value=value)
            future.add_callback(lambda _meta: acks.done(None))
            future.add_errback(acks.done)
        producer.flush()
        return started
    finally:
        producer.close()


def send_confluent(bootstrap: str, topic: str, records: Sequence[Record], acks: Acks) -> float:
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": LINGER_MS,
            "batch.size": BATCH_SIZE,
            "compression.type": "lz4",
            # kafka-python's partitioner, as the producer program sets it for this client.
            "partitioner": "murmur2_random",
        }
    )
    producer.list_topics(topic, timeout=30)  # connect before the clock starts

    def delivered(error: object | None, _message: object) -> None:
        acks.done(error)

    started = time.monotonic()
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=delivered)
                break
            except BufferError:  # the client's queue is full: let it drain a little
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(120)
    if remaining:
        raise RuntimeError(f"{remaining} messages still unacknowledged after 120 s")
    return started


SENDERS: dict[str, Callable[[str, str, Sequence[Record], Acks], float]] = {
    "kafka-python": send_kafka_python,
    "confluent-kafka": send_confluent,
}


def send(client: str, bootstrap: str, topic: str, records: Sequence[Record]) -> dict:
    acks = Acks()
    started = SENDERS[client](bootstrap, topic, records, acks)
    seconds = (acks.last or time.monotonic()) - started
    return {
        "client": client,
        "sent": acks.sent,
        "failed": acks.failed,
        "last_error": acks.error,
        "seconds": round(seconds, 3),
        "events_per_second": round(acks.sent / seconds, 1) if seconds > 0 else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.runtime.bench.clients")
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="write events of the traffic model to a file")
    gen.add_argument("--count", type=int, required=True)
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--seed", type=int, default=42)
    snd = commands.add_parser("send", help="publish a file's events with one client")
    snd.add_argument("--client", choices=CLIENTS, required=True)
    snd.add_argument("--events", type=Path, required=True)
    snd.add_argument("--bootstrap", required=True)
    snd.add_argument("--topic", required=True)
    snd.add_argument("--skip", type=int, default=0, help="leave out the first SKIP events")
    snd.add_argument("--limit", type=int, default=0, help="send at most LIMIT events (0: all)")
    args = parser.parse_args(argv)
    if args.command == "generate":
        result = generate(args.count, args.out, args.seed)
    else:
        records = load(args.events, args.skip, args.limit)
        result = send(args.client, args.bootstrap, args.topic, records)
    print(json.dumps(result), flush=True)
    return 1 if result.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
