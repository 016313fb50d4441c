"""Stages a and b: the producers flat out.

a) The same pre-generated events sent by kafka-python and by confluent-kafka, and Kafka's
   own Java ProducerPerformance with records of the events' mean size: what the clients
   can do, without the traffic model.
b) The project's producer program (python -m app.producer) flat out with each client:
   what the program does, traffic model included.

Both write to topics of their own, so the job's topic holds only what the job is meant
to read.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from app.runtime.bench.clients import BATCH_SIZE, CLIENTS, LINGER_MS
from app.runtime.bench.context import Bench
from app.runtime.bench.procs import last_json_line
from app.runtime.broker import LOG4J2

# Resolved by `make bench` from app/runtime/maven/kafka-tools.pom.xml.
KAFKA_TOOLS_JARS = Path(__file__).resolve().parents[3] / ".cache" / "jars" / "kafka-tools"
PERF_CLASS = "org.apache.kafka.tools.ProducerPerformance"
# Its final line: "50000 records sent, 41152.3 records/sec (15.68 MB/sec), 512.3 ms avg
# latency, 901.0 ms max latency, ..."
PERF_SUMMARY = re.compile(
    r"(?P<records>\d+) records sent, (?P<rate>[\d.]+) records/sec \((?P<mb>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency"
)
# Guards only, never measurements: a child still running after this long is stuck.
TIMEOUT = 3600.0


def generate_events(bench: Bench, count: int) -> tuple[Path, dict]:
    path = bench.root / "events.tsv"
    log = bench.logs / "generate.log"
    args = ["--count", str(count), "--out", str(path), "--seed", str(bench.settings.producer_seed)]
    bench.children.run(_clients("generate", *args), log, TIMEOUT)
    return path, last_json_line(log)


def send_events(
    bench: Bench, client: str, events: Path, topic: str, skip: int = 0, limit: int = 0
) -> dict:
    """Publish a slice of the events file with one client, in a process of its own."""
    log = bench.logs / f"send-{client}-{topic}-{skip}.log"
    args = ["--client", client, "--events", str(events), "--bootstrap", bench.bootstrap]
    args += ["--topic", topic, "--skip", str(skip), "--limit", str(limit)]
    peak = bench.children.run(_clients("send", *args), log, TIMEOUT)
    return {**last_json_line(log), "peak_rss_mib": peak}


def python_clients(bench: Bench, events: Path, topic: str) -> dict[str, dict]:
    results = {}
    for client in CLIENTS:
        result = send_events(bench, client, events, topic)
        bench.say(
            f"  {client}: {result['sent']:,} events in {result['seconds']:.2f} s, "
            f"{result['events_per_second']:,.0f} events/s"
        )
        results[client] = result
    return results


def java_producer_performance(bench: Bench, topic: str, records: int, record_size: int) -> dict:
    if not any(KAFKA_TOOLS_JARS.glob("kafka-tools-*.jar")):
        raise RuntimeError(f"Kafka's tools jars not found in {KAFKA_TOOLS_JARS}: run `make bench`")
    log4j = bench.root / "tools-log4j2.properties"
    log4j.write_text(LOG4J2.format(log_file=bench.logs / "producer-performance-log4j.log"))
    args = [
        "java",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        f"{KAFKA_TOOLS_JARS}/*",
        PERF_CLASS,
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        str(record_size),
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={bench.bootstrap}",
        "acks=all",
        "enable.idempotence=true",
        "compression.type=lz4",
        f"linger.ms={LINGER_MS}",
        f"batch.size={BATCH_SIZE}",
    ]
    log = bench.logs / "producer-performance.log"
    peak = bench.children.run(args, log, TIMEOUT)
    matches = [PERF_SUMMARY.search(line) for line in log.read_text().splitlines()]
    found = [m for m in matches if m]
    if not found:
        raise RuntimeError(f"no summary line from ProducerPerformance in {log}")
    final = found[-1]
    result = {
        "records": int(final["records"]),
        "record_size": record_size,
        "records_per_second": float(final["rate"]),
        "mb_per_second": float(final["mb"]),
        "avg_latency_ms": float(final["avg"]),
        "max_latency_ms": float(final["max"]),
        "peak_rss_mib": peak,
    }
    bench.say(
        f"  Java ProducerPerformance: {result['records']:,} records of {record_size} B, "
        f"{result['records_per_second']:,.0f} records/s"
    )
    return result


def producer_program_flat_out(bench: Bench, seconds: float, topic: str) -> dict[str, dict]:
    results = {}
    for client in CLIENTS:
        log = bench.logs / f"producer-flat-out-{client}.log"
        env = bench.producer_env(client, 1_000_000.0, seconds, topic)
        peak = bench.children.run([sys.executable, "-m", "app.producer"], log, TIMEOUT, env)
        summary = last_json_line(log)
        results[client] = {**summary, "peak_rss_mib": peak}
        bench.say(
            f"  PRODUCER_CLIENT={client}: {summary['sent']:,} events in {summary['seconds']} s, "
            f"{summary['events_per_second']:,.0f} events/s"
        )
    return results


def _clients(command: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "app.runtime.bench.clients", command, *args]
