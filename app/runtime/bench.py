"""`make bench`: throughput, freshness and memory of the local pipeline. Not a test.

Three measurements on the demo's default settings, each printed with how it was taken:

1. Sustained throughput: after a warm-up, the producer sends as fast as it can for
   --seconds; the job falls behind and works through the backlog batch after batch
   (maxOffsetsPerTrigger each). Events/s is what it read per second of wall time while
   behind, i.e. its capacity: first beside the producer (both share the CPUs), then alone
   while it drains what is left. The producer's own rate is shown too.
2. Freshness: with the producer at the demo's rate, a marker event (a page of its own)
   is sent every few seconds with event_time = now; freshness is the time from that
   event_time until its count is visible in page_clicks_latest.
3. Peak memory (VmHWM, the resident-set high-water mark) of the broker JVM, the Spark
   driver (its JVM, and the Python process that drives it) and the producer.

Runs under DATA_DIR/bench (wiped first) on its own broker port, and writes results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaProducer

from app import settings as settings_module
from app.contract import encode, format_event_time
from app.processor import job
from app.runtime.broker import LocalBroker, ensure_topic
from app.runtime.demo import start_producer, stop_producer
from app.settings import Settings
from app.storage import open_store
from app.storage.migrations import migrate

# How long a freshness marker may take to show before the bench gives up.
MARKER_TIMEOUT_SECONDS = 120


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def spark_jvm_pid() -> int:
    """The Spark driver JVM is the one child of this process running SparkSubmit."""
    me = str(os.getpid())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        parent = stat.rsplit(")", 1)[1].split()[1]
        if parent == me and b"SparkSubmit" in cmdline:
            return int(proc.name)
    raise RuntimeError("Spark driver JVM not found")


def processing_rate(store, since: datetime, until: datetime | None = None) -> tuple[int, float]:
    """Rows the counting query read in the batches that started in [since, until), and the
    seconds from the first of them starting to the last of them ending.

    The query had a backlog all along, so this is its capacity, not the arrival rate.
    """
    until_sql = (
        f"AND batch_time < toDateTime64('{until:%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC') " if until else ""
    )
    batches = store.query(
        "SELECT num_input_rows AS n, batch_time AS started, batch_duration_ms AS ms "
        "FROM pipeline_progress FINAL WHERE num_input_rows > 0 "
        f"AND batch_time >= toDateTime64('{since:%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC') "
        f"{until_sql}ORDER BY batch_time"
    )
    if not batches:
        return 0, 0.0
    last = batches[-1]
    span = (last["started"] - batches[0]["started"]).total_seconds() + last["ms"] / 1000
    return sum(b["n"] for b in batches), span


def measure_throughput(settings: Settings, store, pipeline, logs: Path, seconds: int) -> dict:
    flood = replace(settings, producer_rate=1_000_000.0, producer_duration=float(seconds))
    # Batches that start after this moment see only the flood (the warm-up is done).
    started = datetime.now(UTC)
    producer = start_producer(flood, logs / "producer-throughput.log")
    time.sleep(seconds * 0.9)
    producer_peak = peak_rss_mib(producer.pid)
    producer.wait()
    flood_ended = datetime.now(UTC)
    summary = json.loads((logs / "producer-throughput.log").read_text().splitlines()[-1])
    for query in pipeline.queries:
        query.processAllAvailable()
    # While the producer floods, the two share the CPUs; afterwards the job drains the
    # backlog alone.
    shared_rows, shared_span = processing_rate(store, started, flood_ended)
    alone_rows, alone_span = processing_rate(store, flood_ended)
    return {
        "producer_events_per_second": summary["events_per_second"],
        "producer_events": summary["sent"],
        "job_events_per_second_beside_the_producer": _rate(shared_rows, shared_span),
        "job_events_per_second_alone": _rate(alone_rows, alone_span),
        "producer_peak_rss_mib": round(producer_peak, 1),
    }


def _rate(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds else 0.0


def warm_up(settings: Settings, pipeline, logs: Path, seconds: int) -> None:
    """The first batches pay for JIT compilation and code generation: keep them out."""
    producer = start_producer(
        replace(settings, producer_duration=float(seconds)), logs / "producer-warm-up.log"
    )
    producer.wait()
    for query in pipeline.queries:
        query.processAllAvailable()


def measure_freshness(settings: Settings, store, logs: Path, markers: int, every: float) -> dict:
    producer = start_producer(settings, logs / "producer-freshness.log")
    sender = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    delays = []
    try:
        time.sleep(settings.trigger_interval * 2)  # the producer settles in
        for n in range(markers):
            page = f"/bench/marker-{uuid.uuid4().hex[:8]}"
            sent = datetime.now(UTC)
            event = {
                "event_id": str(uuid.uuid4()),
                "schema_version": 1,
                "event_time": format_event_time(sent),
                "user_id": "bench",
                "session_id": "bench",
                "page_url": page,
                "event_type": "page_view",
                "referrer": None,
                "user_agent": "bench",
                "device": "desktop",
                "country": "US",
            }
            sender.send(settings.kafka_topic, key=b"bench", value=encode(event)).get(30)
            deadline = time.monotonic() + MARKER_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                found = store.query(
                    f"SELECT count() AS n FROM page_clicks_latest WHERE page_url = '{page}'"
                )[0]["n"]
                if found:
                    delays.append((datetime.now(UTC) - sent).total_seconds())
                    break
                time.sleep(0.05)
            else:
                # A marker that never shows is a finding, not a sample to leave out.
                raise RuntimeError(
                    f"marker {page} not in page_clicks_latest after {MARKER_TIMEOUT_SECONDS} s"
                )
            print(f"  marker {n + 1}/{markers}: {delays[-1]:.2f} s", flush=True)
            time.sleep(every)
        producer_peak = peak_rss_mib(producer.pid)
    finally:
        sender.close()
        stop_producer(producer)
    delays.sort()
    return {
        "markers": len(delays),
        "freshness_p50_seconds": round(statistics.median(delays), 2),
        "freshness_p95_seconds": round(delays[int(0.95 * (len(delays) - 1))], 2),
        "freshness_max_seconds": round(delays[-1], 2),
        "producer_peak_rss_mib": round(producer_peak, 1),
    }


def main(argv: list[str] | None = None) -> int:
    def flags(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--seconds", type=int, default=60, help="flood duration")
        parser.add_argument("--markers", type=int, default=20, help="freshness samples")
        parser.add_argument("--every", type=float, default=3.0, help="seconds between markers")

    base, args = settings_module.from_cli(
        "Measure the local pipeline.",
        ["kafka", "clickhouse", "producer", "processor", "demo"],
        argv,
        extra=flags,
        prog="python -m app.runtime.bench",
    )
    root = Path(base.data_dir) / "bench"
    shutil.rmtree(root, ignore_errors=True)
    logs = root / "logs"
    logs.mkdir(parents=True)
    port = int(base.kafka_bootstrap_servers.rsplit(":", 1)[1]) + 100
    settings = replace(
        base,
        data_dir=str(root),
        clickhouse_url=f"chdb://{root}/clickhouse",
        checkpoint_dir=str(root / "checkpoints"),
        kafka_bootstrap_servers=f"127.0.0.1:{port}",
        fault_malformed_rate=0.0,
        fault_null_user_rate=0.0,
        fault_null_page_rate=0.0,
        fault_late_rate=0.0,
        fault_duplicate_rate=0.0,
    )
    print(f"bench: broker on {settings.kafka_bootstrap_servers}, data in {root}", flush=True)
    broker = LocalBroker(settings.kafka_bootstrap_servers, settings.data_dir)
    broker.start()
    store = open_store(settings.clickhouse_url, settings.clickhouse_database)
    spark = None
    try:
        ensure_topic(broker.bootstrap, settings.kafka_topic, settings.kafka_partitions)
        migrate(store)
        spark = job.build_spark(settings)
        pipeline = job.start(spark, settings, store)
        print("0/2 warm-up: 20 s at the demo's rate", flush=True)
        warm_up(settings, pipeline, logs, 20)
        print(f"1/2 throughput: producer flat out for {args.seconds} s", flush=True)
        throughput = measure_throughput(settings, store, pipeline, logs, args.seconds)
        print(
            f"2/2 freshness: {args.markers} markers at {settings.producer_rate:g} events/s",
            flush=True,
        )
        freshness = measure_freshness(settings, store, logs, args.markers, args.every)
        memory = {
            "broker_jvm_peak_rss_mib": round(peak_rss_mib(broker.process.pid), 1),
            "spark_driver_jvm_peak_rss_mib": round(peak_rss_mib(spark_jvm_pid()), 1),
            # This process: the Python side of the driver, and chDB, which runs inside it.
            "driver_python_with_chdb_peak_rss_mib": round(peak_rss_mib(os.getpid()), 1),
            "producer_peak_rss_mib": max(
                throughput.pop("producer_peak_rss_mib"), freshness.pop("producer_peak_rss_mib")
            ),
        }
        pipeline.stop()
    finally:
        if spark is not None:
            job.stop_spark(spark)
        store.close()
        broker.stop()
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": _cpus(), "python": sys.version.split()[0], "java": _java()},
        "settings": {
            "trigger_interval_s": settings.trigger_interval,
            "max_offsets_per_trigger": settings.max_offsets_per_trigger,
            "shuffle_partitions": settings.shuffle_partitions,
            "kafka_partitions": settings.kafka_partitions,
            "spark_driver_memory": settings.spark_driver_memory,
        },
        "throughput": throughput,
        "freshness": freshness,
        "memory": memory,
    }
    (root / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"written to {root / 'results.json'}")
    return 0


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def _java() -> str:
    out = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    return out.splitlines()[0] if out else "unknown"


if __name__ == "__main__":
    sys.exit(main())
