"""make backup, more traffic, make restore, resume: nothing lost, nothing counted twice.

The real producer feeds the real broker; the real processor runs as its own process and
is stopped as systemd stops it (SIGTERM) for the backup, which app/backup.py takes on the
real ClickHouse engine (chDB, with the configuration the clickhouse role renders):
BACKUP of the database and a copy of the checkpoint. The processor then runs on and
drains the topic, so the tables hold more than the backup; the restore puts the backup's
tables and checkpoint back, and a last run reads again from Kafka every event after the
backup. ClickHouse must then equal the producer's manifest, as if nothing had happened.
"""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime

import pytest

from app import backup
from app.storage.embedded import EmbeddedStore
from tests.conftest import SPARK_KAFKA_JARS, make_settings
from tests.integration.exactness import assert_outputs_equal_manifest
from tests.integration.test_restart import commits, kill_9, note, start, wait_for_commits
from tests.unit.test_backup import render_role_config

pytestmark = pytest.mark.integration

IDLE_TIMEOUT = 10


def events_in(store: EmbeddedStore) -> int:
    return store.query("SELECT count() AS n FROM events")[0]["n"]


def test_a_restore_then_resume_counts_every_event_once(broker, topic, tmp_path):
    checkpoint = tmp_path / "checkpoints"
    manifest = tmp_path / "manifest.json"
    backups = tmp_path / "backups"
    backups.mkdir()
    config = tmp_path / "appliance.xml"
    config.write_text(render_role_config(backups))
    data = tmp_path / "clickhouse"
    settings = make_settings(
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic=topic,
        clickhouse_url=f"chdb://{data}",
        checkpoint_dir=str(checkpoint),
        spark_jars=str(SPARK_KAFKA_JARS),
        spark_master="local[2]",
        # The appliance's trigger is 5 s: batches have gaps between them where a stop
        # finds the query idle. 2 s keeps the test short with gaps still there.
        trigger_interval="2s",
        max_offsets_per_trigger="1500",
        producer_rate="150",
        producer_seed="2027",
        producer_manifest=str(manifest),
        fault_malformed_rate="0.01",
        fault_null_user_rate="0.01",
        fault_duplicate_rate="0.03",
        watermark_delay="5s",
        session_idle_timeout=f"{IDLE_TIMEOUT}s",
        producer_concurrent_sessions="64",
    )
    producer_log, processor_log = tmp_path / "producer.log", tmp_path / "processor.log"
    producer = start("app.producer", settings, producer_log)
    processor = start("app.processor", settings, processor_log)
    try:
        wait_for_commits(checkpoint, 3, processor, processor_log)
        # As make backup stops it: SIGTERM (systemctl stop), and while the stop has cut a
        # batch short, start it again, let it commit, stop it again.
        for attempt in range(1, 6):
            processor.send_signal(signal.SIGTERM)
            assert processor.wait(timeout=120) == 0, processor_log.read_text()[-3000:]
            pending = backup.unfinished_batches(checkpoint)
            note(f"stop {attempt}: after {commits(checkpoint)} commits, unfinished {pending}")
            if not pending:
                break
            processor = start("app.processor", settings, processor_log)
            wait_for_commits(checkpoint, commits(checkpoint) + 2, processor, processor_log)
        assert pending == {}
        assert producer.poll() is None, producer_log.read_text()[-3000:]

        store = EmbeddedStore(str(data), "clickstream", config_file=str(config))
        try:
            taken = backup.take_backup(
                store, "clickstream", backups, "b1", checkpoint, datetime.now(UTC)
            )
            at_backup = events_in(store)
        finally:
            store.close()
        note(f"backup: {at_backup} events, batches {taken['last_committed_batch']}")

        processor = start("app.processor", settings, processor_log)
        wait_for_commits(checkpoint, commits(checkpoint) + 2, processor, processor_log)
        producer.send_signal(signal.SIGTERM)  # flush, write the manifest, exit 0
        assert producer.wait(timeout=120) == 0, producer_log.read_text()[-3000:]
        processor.send_signal(signal.SIGTERM)
        assert processor.wait(timeout=120) == 0, processor_log.read_text()[-3000:]
        drain = start("app.processor", settings, processor_log, "--available-now")
        assert drain.wait(timeout=300) == 0, processor_log.read_text()[-3000:]
        note("drained past the backup")

        store = EmbeddedStore(str(data), "clickstream", config_file=str(config))
        try:
            before_restore = events_in(store)
            backup.restore_backup(store, "clickstream", backups, "b1", checkpoint)
            assert events_in(store) == at_backup < before_restore
        finally:
            store.close()
        note(f"restored: {at_backup} of {before_restore} events")

        resume = start("app.processor", settings, processor_log, "--available-now")
        assert resume.wait(timeout=300) == 0, processor_log.read_text()[-3000:]
        note("resumed from the backup's checkpoint")
    finally:
        for process in (producer, processor):
            if process.poll() is None:
                kill_9(process)

    truth = json.loads(manifest.read_text())
    summary = json.loads(producer_log.read_text().strip().splitlines()[-1])
    assert summary["failed"] == 0
    assert summary["sent"] >= summary["generated"] > 1000

    store = EmbeddedStore(str(data), "clickstream")
    try:
        assert events_in(store) == before_restore
        closed = assert_outputs_equal_manifest(store, truth, IDLE_TIMEOUT)
        assert len(closed) > 50
        # Every record was read in exactly one batch of what the tables now hold: those of
        # the backup and those of the resumed query; none of the batches the restore undid.
        accounting = store.query(
            "SELECT toUInt64(sum(records_read)) AS read, toUInt64(sum(counted)) AS counted, "
            "min(balanced) AS balanced, "
            "toUInt64(count()) - uniqExact(batch_id) AS reported_twice FROM pipeline_accounting"
        )
        assert accounting == [
            {
                "read": summary["sent"],
                "counted": truth["counted_events"],
                "balanced": 1,
                "reported_twice": 0,
            }
        ]
    finally:
        store.close()
