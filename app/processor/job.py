"""Wiring: the Spark session, the Kafka source, the streaming query and its sink.

One query reads the topic: each Kafka record is read and parsed once, judged (valid, or
rejected with a reason), deduplicated within the watermark, and the micro-batch sink
fans the batch out to every table (page_clicks_1m, rejected_events, pipeline_progress).
One query means one checkpoint, one batch id and one token for all of a batch's outputs.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pyspark
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from app.alerts.rules import rules_from as alert_rules_from
from app.alerts.topic import AlertsTopic, NotifierAlerts
from app.lifecycle import terminate
from app.processor import gaps, sessions, transforms
from app.processor.sink import ClickstreamBatchWriter, SinkOptions, check_checkpoint_matches_table
from app.runtime.broker import ensure_topic
from app.settings import Settings
from app.storage import ClickHouseStore

log = logging.getLogger(__name__)

# The query's name, in pipeline_progress and the logs, and its checkpoint's subfolder.
QUERY_NAME = "clickstream"
KAFKA_PACKAGE = f"org.apache.spark:spark-sql-kafka-0-10_2.13:{pyspark.__version__}"
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")


def connector_jars(spec: str) -> list[str]:
    """Jar files from SPARK_JARS (files or folders), minus what pyspark already ships.

    A Maven-resolved folder also holds Hadoop, Scala and SLF4J jars that pyspark has in
    its own versions; loading both would put two copies of the same classes on the path.
    """
    shipped = {_artifact(p.name) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
    jars: list[str] = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        path = Path(item)
        candidates = sorted(path.glob("*.jar")) if path.is_dir() else [path]
        if not candidates or not all(p.is_file() for p in candidates):
            raise FileNotFoundError(f"SPARK_JARS: no jar at {item}")
        jars += [str(p.resolve()) for p in candidates if _artifact(p.name) not in shipped]
    return jars


def _artifact(jar_name: str) -> str:
    """'kafka-clients-3.9.2.jar' -> 'kafka-clients'; the version is the first '-N.N' part."""
    match = re.match(r"^(.*?)-\d+\.\d+", jar_name)
    return match.group(1) if match else jar_name.removesuffix(".jar")


def build_spark(settings: Settings, extra_conf: dict[str, str] | None = None) -> SparkSession:
    conf = {
        "spark.app.name": "clickstream-processor",
        "spark.master": settings.spark_master,
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        # The dedupe state holds every event_id within the watermark: keep it in RocksDB,
        # off the JVM heap, so a busy minute does not become a garbage-collection storm.
        "spark.sql.streaming.stateStore.providerClass": (
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
        ),
    }
    if settings.spark_driver_host:
        # Executors in containers call back to a driver on the host: advertise an address
        # they can reach, and listen on that address only.
        conf["spark.driver.host"] = conf["spark.driver.bindAddress"] = settings.spark_driver_host
    if settings.spark_jars:
        conf["spark.jars"] = ",".join(connector_jars(settings.spark_jars))
    else:
        conf["spark.jars.packages"] = KAFKA_PACKAGE
    conf.update(extra_conf or {})
    secret = cluster_secret(settings)
    if secret:
        conf["spark.authenticate"] = "true"
        _start_jvm_without_secret(conf)
        conf["spark.authenticate.secret"] = secret
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def cluster_secret(settings: Settings) -> str:
    """The shared secret to authenticate with: a spark:// master's only.

    A standalone master and worker started with spark.authenticate accept only
    applications that know their secret (the settings refuse a spark:// master without
    one). local[*] runs everything in this process: nothing to authenticate to.
    """
    return settings.spark_auth_secret if settings.spark_master.startswith("spark://") else ""


def _start_jvm_without_secret(conf: dict[str, str]) -> None:
    """Start Spark's JVM with every option but the secret, which then goes over py4j.

    pyspark starts the JVM with `spark-submit --conf KEY=VALUE` for each option of the
    session it is asked for: the secret would be in the JVM's command line, which every
    user of the host can read (ps, /proc/PID/cmdline). The options the launch needs
    (memory, Java options, jars) are passed as usual; the session built next in the
    running JVM gets the secret in memory only, where Spark redacts it from its UI.
    """
    from pyspark import SparkConf, SparkContext

    if SparkContext._gateway is None:
        launch = SparkConf(loadDefaults=False).setAll(conf.items())
        SparkContext._ensure_initialized(conf=launch)


def stop_spark(spark: SparkSession, timeout: float = 30.0) -> None:
    """Stop Spark and wait until its JVM has exited.

    spark.stop() leaves the driver JVM to notice on its own, a moment later, that Python
    is gone. A program that stops must leave nothing behind, so close the JVM's stdin
    (it exits on EOF) and wait for it.
    """
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    spark.stop()
    process = getattr(gateway, "proc", None)
    if process is None:
        return
    gateway.shutdown()
    if process.stdin:
        process.stdin.close()  # how the JVM is asked to exit
    terminate(process, timeout, ask_first=False)


def read_kafka(
    spark: SparkSession, settings: Settings, over_recorded_gap: bool = False
) -> DataFrame:
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers)
        .option("subscribe", settings.kafka_topic)
        .option("startingOffsets", settings.starting_offsets)
        .option("maxOffsetsPerTrigger", settings.max_offsets_per_trigger)
        # Exactness over availability: if records vanish (retention) before they are
        # read, stop and say so rather than count less in silence. Off only for a run
        # that resumes over a gap an operator recorded (app/processor/gaps.py).
        .option("failOnDataLoss", "false" if over_recorded_gap else "true")
        .load()
    )


@dataclass
class Pipeline:
    spark: SparkSession
    queries: list[StreamingQuery]
    alerts_topic: AlertsTopic | None = None
    notifier_alerts: NotifierAlerts | None = None

    def stop(self, grace_seconds: float = 30.0) -> None:
        """Stop each query between batches where possible.

        Structured Streaming has no graceful stop of its own; stopping in the middle of a
        batch is safe (the batch is replayed and deduplicated on the next start) but
        interrupts the sink mid-insert and fills the log with the interruption.
        """
        for query in self.queries:
            deadline = time.monotonic() + grace_seconds
            while query.isActive and query.status["isTriggerActive"]:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            query.stop()
        if self.alerts_topic is not None:
            self.alerts_topic.close()
        if self.notifier_alerts is not None:
            self.notifier_alerts.close()


def build_query(
    spark: SparkSession, settings: Settings, over_recorded_gap: bool = False
) -> DataFrame:
    """Kafka records -> judged -> deduplicated: the one frame every output reads."""
    judged = transforms.judge(
        transforms.parse(read_kafka(spark, settings, over_recorded_gap)),
        max_event_bytes=settings.max_event_bytes,
        max_future_skew_seconds=settings.max_future_skew,
        max_event_age_seconds=settings.max_event_age,
        max_page_url_length=settings.max_page_url_length,
        reject_sample_bytes=settings.reject_sample_bytes,
    )
    return transforms.dedupe(judged, settings.watermark_delay)


def set_events_ttl(store: ClickHouseStore, days: int) -> None:
    """Give events the TTL of EVENTS_TTL_DAYS, if it has another (a setting, not a migration)."""
    engine = store.query(
        "SELECT engine_full FROM system.tables "
        "WHERE database = currentDatabase() AND name = 'events'"
    )[0]["engine_full"]
    if f"TTL toDateTime(event_time) + toIntervalDay({int(days)}) " not in engine:
        log.info("events: TTL set to %d days of event time", days)
        store.command(
            f"ALTER TABLE events MODIFY TTL toDateTime(event_time) + INTERVAL {int(days)} DAY"
        )


def start(
    spark: SparkSession, settings: Settings, store: ClickHouseStore, available_now: bool = False
) -> Pipeline:
    """Start the query; with available_now it reads what is in the topic, then stops."""
    checkpoint = str(Path(settings.checkpoint_dir) / QUERY_NAME)
    check_checkpoint_matches_table(store, checkpoint)
    set_events_ttl(store, settings.events_ttl_days)
    # One partition: the notifier reads alert changes and heartbeats in the order sent.
    ensure_topic(settings.kafka_bootstrap_servers, settings.alerts_topic, 1)
    # Records deleted by retention while the processor was down: refuse, unless recorded
    # (after ensure_topic, which waits for a broker that is not up yet).
    over_recorded_gap = gaps.resume_over(
        store,
        gaps.find_gaps(
            Path(checkpoint),
            settings.kafka_topic,
            lambda: gaps.earliest_offsets(settings.kafka_bootstrap_servers, settings.kafka_topic),
        ),
    )
    alerts_topic = AlertsTopic(settings.kafka_bootstrap_servers, settings.alerts_topic)
    notifier_alerts = NotifierAlerts(settings.kafka_bootstrap_servers, settings.alerts_topic)
    sink = ClickstreamBatchWriter(
        spark,
        store,
        QUERY_NAME,
        checkpoint,
        SinkOptions(
            window_seconds=settings.window_duration,
            retries=settings.sink_retries,
            backoff_seconds=settings.sink_retry_backoff,
            session_rules=sessions.rules_from(settings),
            alert_rules=alert_rules_from(settings),
        ),
        alerts_topic,
        notifier_alerts,
    )
    writer = (
        build_query(spark, settings, over_recorded_gap)
        .writeStream.queryName(QUERY_NAME)
        .outputMode("append")
        .option("checkpointLocation", checkpoint)
        .foreachBatch(sink)
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(
            processingTime=f"{int(settings.trigger_interval * 1000)} milliseconds"
        )
    query = writer.start()
    log.info("started %s (checkpoint %s)", QUERY_NAME, checkpoint)
    return Pipeline(spark, [query], alerts_topic, notifier_alerts)
