"""`python -m app.metrics` publishes to CloudWatch: the real program and boto3 against moto.

moto's CloudWatch keeps what PutMetricData sends, so the test reads back exactly what an
alarm in terraform/alarms.tf would evaluate: the namespace, names, dimension and values.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

from app.storage.embedded import EmbeddedStore
from app.storage.migrations import migrate
from tests.unit.test_metrics import PROGRESS_COLUMNS, progress_row

REPO = Path(__file__).resolve().parents[2]
INSTANCE = "i-0123456789abcdef0"
REGION = "us-west-2"


def test_the_program_publishes_every_reading_by_instance(moto_endpoint: str, tmp_path: Path):
    store = EmbeddedStore(str(tmp_path / "ch"), "clickstream")
    migrate(store)
    store.command(
        f"INSERT INTO pipeline_progress ({PROGRESS_COLUMNS}) VALUES "
        + progress_row("clickstream", 3, 30, 1234)
    )
    store.close()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "CLICKHOUSE_URL": f"chdb://{tmp_path / 'ch'}",
        "METRICS_INSTANCE_ID": INSTANCE,
        "METRICS_REGION": REGION,
        "METRICS_DATA_PATH": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "app.metrics"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().endswith("published to Clickstream"), proc.stderr
    assert "KafkaLag=1234, SecondsSinceLastBatch=" in proc.stderr

    cloudwatch = boto3.client(
        "cloudwatch",
        region_name=REGION,
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    listed = cloudwatch.list_metrics(Namespace="Clickstream")["Metrics"]
    assert sorted(m["MetricName"] for m in listed) == [
        "DataVolumeUsedPercent",
        "KafkaLag",
        "RootVolumeUsedPercent",
        "SecondsSinceLastBatch",
    ]
    for metric in listed:
        assert metric["Dimensions"] == [{"Name": "InstanceId", "Value": INSTANCE}]

    def maximum(name: str) -> float:
        now = datetime.now(UTC)
        points = cloudwatch.get_metric_statistics(
            Namespace="Clickstream",
            MetricName=name,
            Dimensions=[{"Name": "InstanceId", "Value": INSTANCE}],
            StartTime=now - timedelta(minutes=10),
            EndTime=now + timedelta(minutes=1),
            Period=60,
            Statistics=["Maximum"],
        )["Datapoints"]
        assert len(points) == 1, points
        return points[0]["Maximum"]

    assert maximum("KafkaLag") == 1234.0
    assert 30.0 <= maximum("SecondsSinceLastBatch") < 90.0
    assert 0.0 < maximum("RootVolumeUsedPercent") <= 100.0


def test_a_bad_instance_id_stops_the_program_naming_the_setting(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "app.metrics"],
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "METRICS_INSTANCE_ID": "vol-1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "python -m app.metrics: setting error: METRICS_INSTANCE_ID='vol-1': "
        "expected an EC2 instance id (i-0123456789abcdef0), or empty"
    )
