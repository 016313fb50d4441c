"""`make bench`: the stages in order, on one broker, then results.json, the table, the plot."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from app import settings as settings_module
from app.processor import job
from app.runtime.bench import producers, report, steps
from app.runtime.bench.context import Bench
from app.runtime.bench.procs import StackMemory, peak_rss_mib, spark_jvm_pid
from app.runtime.broker import LocalBroker, ensure_topic
from app.storage import open_store
from app.storage.migrations import migrate

# (full, quick) defaults of the flags that size the run.
SIZES = {
    "events": (500_000, 50_000),
    "flat_seconds": (30.0, 10.0),
    "step_seconds": (60.0, 10.0),
    "rates": ("1000,5000,20000", "1000,5000"),
    "search_steps": (6, 2),
}


def flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="a few minutes: fewer events, 10 s steps"
    )
    parser.add_argument("--events", type=int, help="pre-generated events (500,000; quick 50,000)")
    parser.add_argument(
        "--flat-seconds", type=float, help="the producer program flat out (30 s; quick 10 s)"
    )
    parser.add_argument(
        "--step-seconds", type=float, help="each steady-rate step (60 s; quick 10 s)"
    )
    parser.add_argument(
        "--rates", help="freshness rates, events/s (1000,5000,20000; quick 1000,5000)"
    )
    parser.add_argument("--search-steps", type=int, help="steps of the search at most (6; quick 2)")
    parser.add_argument(
        "--freshness-limit", type=float, default=5.0, help="p99 freshness a step may have (s)"
    )


def main(argv: list[str] | None = None) -> int:
    base, args = settings_module.from_cli(
        "Measure the producers, the job and the whole local pipeline.",
        ["kafka", "clickhouse", "producer", "processor", "demo"],
        argv,
        extra=flags,
        prog="python -m app.runtime.bench",
    )
    for name, (full, quick) in SIZES.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    rates = _rates(str(args.rates))
    for problem in _problems(args, rates):
        print(f"python -m app.runtime.bench: error: {problem}", file=sys.stderr)
        return 2
    root = Path(base.data_dir) / "bench"
    shutil.rmtree(root, ignore_errors=True)
    (root / "logs").mkdir(parents=True)
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
    bench = Bench(settings, root, args.quick, freshness_limit=args.freshness_limit)
    results = run(bench, args, rates)
    (root / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    report.plot(results, root / results["plot"])
    print()
    print(report.table(results))
    print(f"\nwritten: {root / 'results.json'}, {root / results['plot']}", flush=True)
    return 0


def _rates(text: str) -> list[float]:
    try:
        return [float(r) for r in text.split(",")]
    except ValueError:
        return []


def _problems(args: argparse.Namespace, rates: list[float]) -> list[str]:
    checks = (
        (bool(rates) and all(r > 0 for r in rates), "--rates: events/s above 0, comma-separated"),
        (args.events >= 1000, "--events: at least 1,000"),
        (args.step_seconds >= 5, "--step-seconds: at least 5 (markers go about once a second)"),
        (args.flat_seconds > 0, "--flat-seconds: above 0"),
        (args.search_steps >= 0, "--search-steps: at least 0"),
    )
    return [problem for ok, problem in checks if not ok]


def run(bench: Bench, args: argparse.Namespace, rates: list[float]) -> dict:
    settings = bench.settings
    topic_a, topic_b = (
        f"{settings.kafka_topic}.bench-clients",
        f"{settings.kafka_topic}.bench-program",
    )
    bench.say(f"bench ({'quick' if bench.quick else 'full'}): broker on {bench.bootstrap}")
    broker = LocalBroker(settings.kafka_bootstrap_servers, settings.data_dir)
    broker.start()
    store = spark = markers = stack = None
    try:
        for topic in (settings.kafka_topic, topic_a, topic_b):
            ensure_topic(broker.bootstrap, topic, settings.kafka_partitions)
        bench.say(f"a) generating {args.events:,} events with the traffic model")
        events_file, generated = producers.generate_events(bench, args.events)
        record_size = round(generated["mean_bytes"])
        bench.say(f"a) sending them with each client (mean {generated['mean_bytes']} B)")
        clients = producers.python_clients(bench, events_file, topic_a)
        clients["java-producer-performance"] = producers.java_producer_performance(
            bench, topic_a, args.events, record_size
        )
        bench.say(f"b) the producer program flat out for {args.flat_seconds:g} s, each client")
        program = producers.producer_program_flat_out(bench, args.flat_seconds, topic_b)
        bench.say("c) starting the job; a warm-up, then a backlog to drain")
        store = open_store(settings.clickhouse_url, settings.clickhouse_database)
        migrate(store)
        spark = job.build_spark(settings)
        # From here to the end the stack runs: its memory at once, sampled (procs.py).
        stack = StackMemory(
            {
                "broker_jvm": broker.process.pid,
                "spark_driver_jvm": spark_jvm_pid(),
                "driver_python": os.getpid(),
            },
            lambda: bench.children.pids_running("app.producer"),
        )
        pipeline, drained = steps.drain(bench, spark, store, events_file, args.events)
        markers = steps.Markers(bench, store)

        def run_step(rate: float) -> dict:
            return steps.step(bench, store, pipeline, markers, rate, args.step_seconds)

        freshness = []
        for rate in rates:
            bench.say(f"e) freshness at {rate:,.0f} events/s for {args.step_seconds:g} s")
            freshness.append(run_step(rate))
        bench.say(f"d) the sustainable rate, from the capacity {drained['events_per_second']:,.0f}")
        sustainable = steps.search(
            bench, run_step, drained["events_per_second"], freshness, args.search_steps
        )
        steady = [s["producer_peak_rss_mib"] for s in freshness + sustainable["steps"]]
        memory = {
            "broker_jvm_mib": peak_rss_mib(broker.process.pid),
            "spark_driver_jvm_mib": peak_rss_mib(spark_jvm_pid()),
            # This process: the Python side of the driver, and chDB, which runs inside it.
            "driver_python_mib": peak_rss_mib(os.getpid()),
            "producers_mib": {
                **{f"{name} (a)": c["peak_rss_mib"] for name, c in clients.items()},
                **{f"program, {name} (b)": p["peak_rss_mib"] for name, p in program.items()},
                f"program, {steps.STEADY_CLIENT}, steady (d, e)": max(steady),
            },
        }
        memory["whole_stack_mib"] = round(
            memory["broker_jvm_mib"]
            + memory["spark_driver_jvm_mib"]
            + memory["driver_python_mib"]
            + max(steady),
            1,
        )
        memory.update(stack.stop())
        bench.say("done; stopping the job and the broker")
        pipeline.stop()
    finally:
        if stack is not None:
            stack.stop()
        if markers is not None:
            markers.close()
        bench.children.stop_all()
        if spark is not None:
            job.stop_spark(spark)
        if store is not None:
            store.close()
        broker.stop()
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if bench.quick else "full",
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": sys.version.split()[0]}
        | {"java": _java()},
        "settings": {
            "trigger_interval_s": settings.trigger_interval,
            "max_offsets_per_trigger": settings.max_offsets_per_trigger,
            "shuffle_partitions": settings.shuffle_partitions,
            "kafka_partitions": settings.kafka_partitions,
            "spark_master": settings.spark_master,
            "spark_driver_memory": settings.spark_driver_memory,
            "step_seconds": args.step_seconds,
            "flat_out_seconds": args.flat_seconds,
        },
        "events": {
            "count": generated["events"],
            "mean_bytes": generated["mean_bytes"],
            "record_size": record_size,
        },
        "producers": clients,
        "producer_program": program,
        "job_drain": drained,
        "freshness": freshness,
        "sustainable": sustainable,
        "memory": memory,
        "plot": "bench.png",
    }


def _java() -> str:
    out = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    return out.splitlines()[0] if out else "unknown"
