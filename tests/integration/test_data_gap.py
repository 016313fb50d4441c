"""Down longer than Kafka's retention: the job refuses the gap, then resumes over it once recorded.

The real broker deletes the oldest records of every partition (DeleteRecords, what the
retention does) while the job is "down"; the real query and chDB then show that the job
stops naming each lost range, that `python -m app.processor.gaps --record` accepts them
into data_gaps, and that the job then counts exactly what Kafka still held, no more, no
less, with the gap on record.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient

from app import settings as settings_module
from app.contract import encode
from app.processor import job
from app.processor.gaps import DataLossError
from app.storage.embedded import EmbeddedStore
from app.storage.migrations import migrate
from tests.conftest import REPO, SPARK_KAFKA_JARS, make_settings
from tests.integration.conftest import publish
from tests.integration.test_hostile_input import counts, event

pytestmark = pytest.mark.integration


def run_until_drained(spark, settings, clickhouse: Path) -> int:
    """One --available-now run of the real query; the clicks counted in all."""
    store = EmbeddedStore(str(clickhouse), "clickstream")
    try:
        migrate(store)
        pipeline = job.start(spark, settings, store, available_now=True)
        try:
            for query in pipeline.queries:
                query.awaitTermination()
                assert query.exception() is None
        finally:
            pipeline.stop()
        return sum(counts(store).values())
    finally:
        store.close()


def gaps_cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "JAVA_HOME", "LANG")}
    return subprocess.run(
        [sys.executable, "-m", "app.processor.gaps", *args],
        cwd=REPO,
        env={**keep, **settings_module.to_environ(settings)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_deleted_range_stops_the_job_until_recorded_then_counts_are_what_kafka_kept(
    spark, broker, topic, tmp_path
):
    clickhouse = tmp_path / "clickhouse"
    settings = make_settings(
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic=topic,
        checkpoint_dir=str(tmp_path / "checkpoints"),
        clickhouse_url=f"chdb://{clickhouse}",
        spark_master="local[2]",
        spark_jars=str(SPARK_KAFKA_JARS),
    )
    now = datetime.now(UTC)
    first = [event(n, now - timedelta(seconds=20)) for n in range(30)]
    publish(broker.bootstrap, topic, [encode(e) for e in first])
    assert run_until_drained(spark, settings, clickhouse) == 30

    # The processor is down: 30 more events arrive, then the retention deletes all but
    # the last 2 records of each partition that got at least 3 of them, most unread.
    second = [event(100 + n, now - timedelta(seconds=10)) for n in range(30)]
    positions = publish(broker.bootstrap, topic, [encode(e) for e in second])
    by_partition = {p: sorted(o for q, o in positions if q == p) for p, _ in positions}
    ends = {p: offsets[-1] + 1 for p, offsets in by_partition.items() if len(offsets) >= 3}
    assert ends, by_partition
    first_offsets = {p: by_partition[p][0] for p in ends}
    delete_before = {p: end - 2 for p, end in ends.items()}
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.delete_records({TopicPartition(topic, p): o for p, o in delete_before.items()})
    finally:
        admin.close()
    lost = {p: delete_before[p] - first_offsets[p] for p in ends}
    kept = 30 - sum(lost.values())
    assert all(n >= 1 for n in lost.values())

    # A start refuses, naming every lost range, and writes nothing.
    store = EmbeddedStore(str(clickhouse), "clickstream")
    try:
        with pytest.raises(DataLossError) as refused:
            job.start(spark, settings, store, available_now=True)
        assert store.query("SELECT count() AS n FROM data_gaps")[0]["n"] == 0
    finally:
        store.close()
    for p in sorted(ends):
        assert (
            f"{topic} partition {p}: offsets {first_offsets[p]} to {delete_before[p] - 1} "
            f"({lost[p]} records)"
        ) in str(refused.value)
    assert "python -m app.processor.gaps --record" in str(refused.value)

    # The tool shows the same ranges (exit 3), then records them.
    shown = gaps_cli(settings)
    assert shown.returncode == 3, shown.stderr
    assert shown.stdout.splitlines()[:-1] == [
        f"lost: {topic} partition {p}: offsets {first_offsets[p]} to {delete_before[p] - 1} "
        f"({lost[p]} records)"
        for p in sorted(ends)
    ]
    done = gaps_cli(settings, "--record")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        f"recorded {len(ends)} gap(s) in data_gaps: the processor resumes over them"
    )

    # The job resumes over the recorded gap: exactly the 30 before it and what Kafka kept.
    assert run_until_drained(spark, settings, clickhouse) == 30 + kept
    store = EmbeddedStore(str(clickhouse), "clickstream")
    try:
        rows = store.query(
            "SELECT topic, partition, first_lost, first_kept, lost FROM data_gaps FINAL "
            "ORDER BY partition"
        )
    finally:
        store.close()
    assert rows == [
        {
            "topic": topic,
            "partition": p,
            "first_lost": first_offsets[p],
            "first_kept": delete_before[p],
            "lost": lost[p],
        }
        for p in sorted(ends)
    ]
    # No gap remains: the next start is strict again and finds nothing to tolerate.
    assert gaps_cli(settings).stdout.startswith("no gap: Kafka still holds every record")
