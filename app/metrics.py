"""The appliance's health as CloudWatch metrics: disk use, Kafka lag, age of the last batch.

`python -m app.metrics` takes one reading and publishes it; a systemd timer runs it every
minute (the notifier role). CloudWatch alarms on these metrics (terraform/alarms.tf) are
what tells someone the data volume is filling or the job has fallen behind or stopped,
before Kafka takes its log offline or the topic's retention passes the job by.

Without METRICS_INSTANCE_ID (make demo, a host outside EC2) it only logs the reading.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from app import settings as settings_module
from app.lifecycle import setup_logging
from app.settings import Settings
from app.storage import ClickHouseStore, open_store

log = logging.getLogger("app.metrics")

# Metric names, as the alarms in terraform/alarms.tf name them.
DATA_VOLUME_USED = "DataVolumeUsedPercent"
ROOT_VOLUME_USED = "RootVolumeUsedPercent"
KAFKA_LAG = "KafkaLag"
SECONDS_SINCE_LAST_BATCH = "SecondsSinceLastBatch"

# The job's streaming query (app.processor.job.QUERY_NAME; this program runs where pyspark
# is not installed, so a test keeps the two the same).
QUERY_NAME = "clickstream"

# The newest batch of the job's query: how far it was behind the topic's end, and how
# long ago it was reported. A query that has never finished a batch gives no row.
LAST_BATCH_SQL = f"""
SELECT argMax(kafka_lag, reported_at) AS kafka_lag,
       dateDiff('millisecond', max(reported_at), now64(3)) / 1000 AS seconds_since
FROM pipeline_progress
WHERE query_name = '{QUERY_NAME}'
HAVING count() > 0
"""


@dataclass(frozen=True)
class Reading:
    name: str
    value: float
    unit: str


def used_percent(path: str) -> float:
    """Use of the file system holding `path`, as df shows it: used / (used + available)."""
    usage = shutil.disk_usage(path)
    # `free` is what is available to the services: ext4's blocks reserved for root are
    # left out, as df leaves them out, so a disk df calls 100 % full reads 100 % here too.
    visible = usage.used + usage.free
    return round(100.0 * usage.used / visible, 2) if visible else 0.0


def disk_readings(settings: Settings) -> list[Reading]:
    return [
        Reading(DATA_VOLUME_USED, used_percent(settings.metrics_data_path), "Percent"),
        Reading(ROOT_VOLUME_USED, used_percent("/"), "Percent"),
    ]


def job_readings(store: ClickHouseStore) -> list[Reading]:
    """The job's lag and the age of its last batch; none before its first batch."""
    rows = store.query(LAST_BATCH_SQL)
    if not rows:
        return []
    return [
        Reading(KAFKA_LAG, float(rows[0]["kafka_lag"]), "Count"),
        Reading(SECONDS_SINCE_LAST_BATCH, max(0.0, float(rows[0]["seconds_since"])), "Seconds"),
    ]


def readings(settings: Settings, store: ClickHouseStore) -> list[Reading]:
    """One reading of every metric; the job's two are absent when it has no batch yet."""
    return disk_readings(settings) + job_readings(store)


def metric_data(found: list[Reading], instance_id: str) -> list[dict[str, Any]]:
    """PutMetricData's MetricData: one datum per reading, by instance."""
    return [
        {
            "MetricName": r.name,
            "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
            "Value": r.value,
            "Unit": r.unit,
        }
        for r in found
    ]


def publish(settings: Settings, found: list[Reading], client: Any | None = None) -> None:
    if client is None:
        import boto3

        client = boto3.client("cloudwatch", region_name=settings.metrics_region or None)
    client.put_metric_data(
        Namespace=settings.metrics_namespace,
        MetricData=metric_data(found, settings.metrics_instance_id),
    )


def run(settings: Settings, open_: Callable[[str, str], ClickHouseStore] = open_store) -> int:
    """Read and publish once: 0, or 1 when the job's readings could not be taken.

    The disks are published even when ClickHouse does not answer: a full disk is often
    why it does not. The job's metrics are then missing, which their alarms count as
    breaching.
    """
    found = disk_readings(settings)
    complete = True
    try:
        store = open_(settings.clickhouse_url, settings.clickhouse_database)
        try:
            found += job_readings(store)
        finally:
            store.close()
    except Exception as exc:
        complete = False
        message = str(exc)
        password = urlparse(settings.clickhouse_url).password
        if password:
            message = message.replace(password, "***")
        log.warning(
            "could not read the job's progress from ClickHouse (%s): %s",
            type(exc).__name__,
            message,
        )
    shown = ", ".join(f"{r.name}={r.value:g}" for r in found)
    if not settings.metrics_instance_id:
        log.info("%s (METRICS_INSTANCE_ID is empty: not published)", shown)
    else:
        publish(settings, found)
        log.info("%s published to %s", shown, settings.metrics_namespace)
    return 0 if complete else 1


def main(argv: list[str] | None = None) -> int:
    settings, _ = settings_module.from_cli(
        "Publish the appliance's disk use, Kafka lag and last batch age to CloudWatch, once.",
        ["clickhouse", "metrics"],
        argv,
        prog="python -m app.metrics",
    )
    setup_logging()
    return run(settings)


if __name__ == "__main__":
    raise SystemExit(main())
