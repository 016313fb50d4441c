"""The processor's entry point: migrations, Spark, the streaming query, a clean stop."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time

from app import settings as settings_module
from app.lifecycle import setup_logging, stop_on_signals
from app.processor import job
from app.processor.gaps import DataLossError
from app.processor.sink import CheckpointMismatch
from app.storage import open_store
from app.storage.migrations import migrate
from app.watchdog import Watchdog

log = logging.getLogger("app.processor")


def _flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--available-now",
        action="store_true",
        help="read everything in the topic now, write it, then exit (backfills, tests)",
    )


def main(argv: list[str] | None = None) -> int:
    settings, args = settings_module.from_cli(
        "Aggregate click events from Kafka into ClickHouse with Spark Structured Streaming.",
        ["kafka", "clickhouse", "processor", "alerts"],
        argv,
        extra=_flags,
        prog="python -m app.processor",
    )
    setup_logging()
    stop = threading.Event()
    stop_on_signals(stop)
    watchdog = Watchdog()
    watchdog.start()

    store = open_store(settings.clickhouse_url, settings.clickhouse_database)
    for migration in migrate(store):
        log.info("applied migration %03d_%s", migration.version, migration.name)
    spark = job.build_spark(settings)
    stop_on_signals(stop)  # again: the SparkContext has just replaced the SIGINT handler
    try:
        pipeline = job.start(spark, settings, store, available_now=args.available_now)
    except (CheckpointMismatch, DataLossError) as exc:
        watchdog.stop()
        job.stop_spark(spark)
        store.close()
        print(f"processor: {exc}", file=sys.stderr)
        return 2
    failed = None
    watchdog.liveness.query_started(time.monotonic())
    try:
        # Poll rather than block in the JVM, so SIGTERM is handled promptly.
        while not stop.wait(1.0):
            ended = [q for q in pipeline.queries if not q.isActive]
            if ended:
                failed = next((q for q in ended if q.exception()), None)
                if failed or len(ended) == len(pipeline.queries):
                    break
            if watchdog.enabled:
                for query in pipeline.queries:
                    progress = query.lastProgress
                    watchdog.liveness.observe(
                        time.monotonic(),
                        bool(query.status["isTriggerActive"]),
                        progress.batchId if progress is not None else None,
                    )
    finally:
        watchdog.stop()
        pipeline.stop()
        job.stop_spark(spark)
        store.close()
    if failed is not None:
        print(f"processor: query {failed.name} failed: {failed.exception()}", file=sys.stderr)
        return 1
    return 0
