"""app.metrics: what the appliance reports to CloudWatch, read from the real engine (chDB)."""

from __future__ import annotations

import logging
import os

import pytest

from app import metrics
from app import settings as settings_module
from app.processor import job
from app.storage.embedded import EmbeddedStore
from app.storage.migrations import migrate

PROGRESS_COLUMNS = (
    "query_name, query_id, run_id, batch_id, reported_at, batch_time, num_input_rows, "
    "input_rows_per_second, processed_rows_per_second, batch_duration_ms, "
    "rows_dropped_by_watermark, state_rows, kafka_lag, watermark, counted, "
    "duplicates_removed, rejected"
)


def progress_row(query: str, batch_id: int, seconds_ago: int, lag: int) -> str:
    at = f"now64(3) - INTERVAL {seconds_ago} SECOND"
    counts = f"10, 1.0, 1.0, 5, 0, 0, {lag}, NULL, 10, 0, 0"
    return f"('{query}', 'q', 'r', {batch_id}, {at}, {at}, {counts})"


@pytest.fixture
def store(tmp_path):
    store = EmbeddedStore(str(tmp_path / "ch"), "clickstream")
    migrate(store)
    yield store
    store.close()


def settings_for(data_path: str, **more: str) -> settings_module.Settings:
    return settings_module.load(overrides={"METRICS_DATA_PATH": data_path, **more})


def df_percent(path: str) -> float:
    """What df's Use% column computes (before its rounding up)."""
    st = os.statvfs(path)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    return 100.0 * used / (used + st.f_bavail * st.f_frsize)


def test_the_query_name_is_the_jobs():
    assert metrics.QUERY_NAME == job.QUERY_NAME


def test_disk_use_is_what_df_shows(tmp_path):
    assert metrics.used_percent(str(tmp_path)) == pytest.approx(df_percent(str(tmp_path)), abs=0.1)
    assert metrics.used_percent("/") == pytest.approx(df_percent("/"), abs=0.1)


def test_a_job_without_a_batch_reports_only_the_disks(store, tmp_path):
    found = metrics.readings(settings_for(str(tmp_path)), store)
    assert [(r.name, r.unit) for r in found] == [
        ("DataVolumeUsedPercent", "Percent"),
        ("RootVolumeUsedPercent", "Percent"),
    ]


def test_lag_and_age_come_from_the_jobs_newest_batch(store, tmp_path):
    store.command(
        f"INSERT INTO pipeline_progress ({PROGRESS_COLUMNS}) VALUES "
        + ", ".join(
            [
                progress_row("clickstream", 7, 600, 900),
                progress_row("clickstream", 8, 90, 4200),
                # Another query's newer row is not the job's.
                progress_row("somebody_else", 1, 5, 1),
            ]
        )
    )
    found = {r.name: r for r in metrics.readings(settings_for(str(tmp_path)), store)}
    assert set(found) == {
        "DataVolumeUsedPercent",
        "RootVolumeUsedPercent",
        "KafkaLag",
        "SecondsSinceLastBatch",
    }
    assert (found["KafkaLag"].value, found["KafkaLag"].unit) == (4200.0, "Count")
    age = found["SecondsSinceLastBatch"]
    assert age.unit == "Seconds"
    # 90 s ago when inserted; the test itself takes well under a minute.
    assert 90.0 <= age.value < 150.0


def test_metric_data_is_one_datum_per_reading_by_instance():
    found = [metrics.Reading("KafkaLag", 12.0, "Count")]
    assert metrics.metric_data(found, "i-0123456789abcdef0") == [
        {
            "MetricName": "KafkaLag",
            "Dimensions": [{"Name": "InstanceId", "Value": "i-0123456789abcdef0"}],
            "Value": 12.0,
            "Unit": "Count",
        }
    ]


def test_without_an_instance_id_it_only_logs(tmp_path, caplog, monkeypatch):
    def must_not_publish(*_args, **_kwargs):
        raise AssertionError("published without METRICS_INSTANCE_ID")

    monkeypatch.setattr(metrics, "publish", must_not_publish)
    store = EmbeddedStore(str(tmp_path / "ch"), "clickstream")
    migrate(store)
    store.close()
    settings = settings_for(str(tmp_path), CLICKHOUSE_URL=f"chdb://{tmp_path / 'ch'}")
    with caplog.at_level(logging.INFO, logger="app.metrics"):
        assert metrics.run(settings) == 0
    message = caplog.records[-1].getMessage()
    assert message.startswith("DataVolumeUsedPercent=")
    assert ", RootVolumeUsedPercent=" in message
    assert message.endswith(" (METRICS_INSTANCE_ID is empty: not published)")


def test_clickhouse_down_still_reports_the_disks_and_exits_1(tmp_path, caplog, monkeypatch):
    published = []
    monkeypatch.setattr(metrics, "publish", lambda _s, found: published.append(found))
    settings = settings_for(
        str(tmp_path),
        CLICKHOUSE_URL="http://reader:s3cret-pass@127.0.0.1:9/",
        METRICS_INSTANCE_ID="i-0123456789abcdef0",
    )

    def refused(url, database):
        raise ConnectionRefusedError(f"cannot reach {url} for {database}")

    with caplog.at_level(logging.INFO, logger="app.metrics"):
        assert metrics.run(settings, open_=refused) == 1
    assert [[r.name for r in found] for found in published] == [
        ["DataVolumeUsedPercent", "RootVolumeUsedPercent"]
    ]
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING).getMessage()
    assert warning == (
        "could not read the job's progress from ClickHouse (ConnectionRefusedError): "
        "cannot reach http://reader:***@127.0.0.1:9/ for clickstream"
    )
    assert "s3cret-pass" not in caplog.text
