"""`make profile`: where a record's cost goes in the job. Not a test.

Fills a topic on a local broker with the traffic model's events, then times the job's
stages one on top of the other, each on a new DataFrame (running one DataFrame twice
reuses its shuffle files and times half the work):

1. static reads of the whole topic, written to Spark's `noop` sink (which computes every
   column): the Kafka read alone; + cast and from_json; + the variant parse and the JSON
   types; + every reject check (`judge`); + a 1-minute window count (a shuffle);
2. the parse's parts on events already in memory (CPU only);
3. the streaming job as it runs, with availableNow over the same records: the real query
   (judge, watermark, dedupe in RocksDB, the fan-out sink into chDB), once with
   MAX_OFFSETS_PER_TRIGGER as set and once with small batches, which gives the fixed cost
   of a micro-batch.

Prints a table and writes DATA_DIR/profile/results.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from app import settings as settings_module
from app.contract import encode
from app.processor import job, transforms
from app.producer.traffic import TrafficModel
from app.runtime.broker import LocalBroker, ensure_topic
from app.settings import Settings
from app.storage import open_store
from app.storage.migrations import migrate


def fill_topic(settings: Settings, events: int) -> None:
    """Publish `events` events of the traffic model, stamped over the last minutes."""
    from kafka import KafkaProducer

    model = TrafficModel(settings.producer_seed, settings.producer_bot_share, run_nonce=1)
    start = datetime.now(UTC) - timedelta(minutes=10)
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks=1,
        linger_ms=20,
        batch_size=256 * 1024,
        compression_type="lz4",
    )
    try:
        for n in range(events):
            event = model.next_event(start + timedelta(milliseconds=n * 600_000 // events))
            producer.send(settings.kafka_topic, key=event["user_id"].encode(), value=encode(event))
        producer.flush()
    finally:
        producer.close()


def static_read(spark: SparkSession, settings: Settings) -> DataFrame:
    return (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers)
        .option("subscribe", settings.kafka_topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
    )


def judged(records: DataFrame, settings: Settings) -> DataFrame:
    return transforms.judge(
        transforms.parse(records),
        settings.max_event_bytes,
        settings.max_future_skew,
        settings.max_event_age,
        settings.max_page_url_length,
        settings.reject_sample_bytes,
    )


STAGES = {
    "kafka read": lambda r, s: r,
    "+ cast, from_json": lambda r, s: r.select(
        F.from_json(F.col("value").cast("string"), "event_id string, page_url string").alias("e")
    ),
    "+ variant parse, typed fields, shape (parse)": lambda r, s: transforms.parse(r),
    "+ every reject check (judge)": judged,
    "+ 1-minute window count": lambda r, s: transforms.count_page_clicks(
        transforms.valid_events(judged(r, s)), s.window_duration
    ),
}


def time_static(spark: SparkSession, settings: Settings, records: int) -> dict[str, float]:
    rates = {}
    for name, build in STAGES.items():
        frame = build(static_read(spark, settings), settings)  # a new DataFrame every time
        started = time.monotonic()
        frame.write.format("noop").mode("overwrite").save()
        seconds = time.monotonic() - started
        rates[name] = round(records / seconds)
        print(f"  {name:<40} {seconds:7.2f} s  {rates[name]:>9,} records/s", flush=True)
    return rates


def time_expressions(spark: SparkSession, settings: Settings, events: int) -> dict[str, int]:
    """The parse's parts on events already in memory: no Kafka, no I/O, only the CPU."""
    from pyspark.sql import types as T

    from app.contract import FIELDS
    from app.processor.schema import event_schema

    model = TrafficModel(settings.producer_seed, settings.producer_bot_share, run_nonce=2)
    now = datetime.now(UTC) - timedelta(minutes=5)
    rows = [("t", n % 3, n, now, encode(model.next_event(now))) for n in range(events)]
    kafka = T.StructType(
        [
            T.StructField("topic", T.StringType()),
            T.StructField("partition", T.IntegerType()),
            T.StructField("offset", T.LongType()),
            T.StructField("timestamp", T.TimestampType()),
            T.StructField("value", T.BinaryType()),
        ]
    )
    cached = spark.createDataFrame(rows, kafka).repartition(2).cache()
    cached.count()
    text = F.col("value").cast("string")
    variant = cached.select(F.try_parse_json(text).alias("j"))
    expressions = {
        "try_parse_json (the variant)": lambda: variant,
        "from_json with the explicit schema": lambda: cached.select(
            F.from_json(text, event_schema()).alias("e")
        ),
        "variant + eleven typed field reads": lambda: variant.select(
            *[F.try_variant_get("j", f"$.{f.name}", "string").alias(f.name) for f in FIELDS]
        ),
        "variant + eleven JSON types, field by field": lambda: variant.select(
            *[F.schema_of_variant(F.try_variant_get("j", f"$.{f.name}", "variant")) for f in FIELDS]
        ),
        "variant + the shape (one schema_of_variant)": lambda: variant.select(
            F.schema_of_variant("j")
        ),
        "parse": lambda: transforms.parse(cached),
        "judge": lambda: judged(cached, settings),
    }
    rates = {}
    try:
        for name, build in expressions.items():
            best = min(_noop_seconds(build()) for _ in range(2))
            rates[name] = round(events / best)
            print(f"  {name:<40} {best:7.2f} s  {rates[name]:>9,} records/s", flush=True)
    finally:
        cached.unpersist()
    return rates


def _noop_seconds(frame: DataFrame) -> float:
    started = time.monotonic()
    frame.write.format("noop").mode("overwrite").save()
    return time.monotonic() - started


def time_streaming(spark: SparkSession, settings: Settings, root: Path, label: str) -> dict:
    store = open_store(f"chdb://{root}/clickhouse-{label}", settings.clickhouse_database)
    try:
        migrate(store)
        run = replace(settings, checkpoint_dir=str(root / f"checkpoints-{label}"))
        started = time.monotonic()
        pipeline = job.start(spark, run, store, available_now=True)
        [query] = pipeline.queries
        query.awaitTermination()
        seconds = time.monotonic() - started
        if query.exception():
            raise RuntimeError(str(query.exception()))
        totals = store.query(
            "SELECT toUInt64(sum(num_input_rows)) AS records, toUInt64(count()) AS batches, "
            "toUInt64(sum(batch_duration_ms)) AS batch_ms FROM pipeline_progress FINAL "
            "WHERE num_input_rows > 0"
        )[0]
    finally:
        store.close()
    result = {
        "records": totals["records"],
        "batches": totals["batches"],
        "seconds": round(seconds, 2),
        "records_per_second": round(totals["records"] / seconds),
        "mean_batch_ms": round(totals["batch_ms"] / max(totals["batches"], 1)),
    }
    print(f"  {label:<40} {json.dumps(result)}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    def flags(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--events", type=int, default=500_000, help="records to profile")
        parser.add_argument(
            "--small-batch", type=int, default=10_000, help="offsets per trigger, small batches"
        )

    base, args = settings_module.from_cli(
        "Profile the job stage by stage.",
        ["kafka", "clickhouse", "producer", "processor", "demo"],
        argv,
        extra=flags,
        prog="python -m app.runtime.profile",
    )
    root = Path(base.data_dir) / "profile"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    port = int(base.kafka_bootstrap_servers.rsplit(":", 1)[1]) + 200
    settings = replace(base, kafka_bootstrap_servers=f"127.0.0.1:{port}", data_dir=str(root))
    broker = LocalBroker(settings.kafka_bootstrap_servers, str(root))
    broker.start()
    spark = None
    try:
        ensure_topic(broker.bootstrap, settings.kafka_topic, settings.kafka_partitions)
        print(f"profile: publishing {args.events:,} events", flush=True)
        fill_topic(settings, args.events)
        spark = job.build_spark(settings)
        print("1/3 static reads, each stage on top of the one before", flush=True)
        static_read(spark, settings).write.format("noop").mode("overwrite").save()  # warm-up
        static = time_static(spark, settings, args.events)
        print("2/3 the parse's parts, on events in memory", flush=True)
        expressions = time_expressions(spark, settings, min(args.events, 200_000))
        print("3/3 the streaming job, availableNow", flush=True)
        streaming = {
            "as set": time_streaming(spark, settings, root, "as set"),
            "small batches": time_streaming(
                spark,
                replace(settings, max_offsets_per_trigger=args.small_batch),
                root,
                "small batches",
            ),
        }
    finally:
        if spark is not None:
            job.stop_spark(spark)
        broker.stop()
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "events": args.events,
        "max_offsets_per_trigger": settings.max_offsets_per_trigger,
        "small_batch": args.small_batch,
        "static_records_per_second": static,
        "in_memory_records_per_second": expressions,
        "streaming": streaming,
    }
    (root / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {root / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
