"""The producer as a program, against the real broker: counts, manifest, SIGTERM.

Every test runs once per Kafka client (PRODUCER_CLIENT): the two must behave alike.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner import murmur2

from app.settings import PRODUCER_CLIENTS
from tests.conftest import REPO, make_settings
from tests.integration.test_restart import child_env

pytestmark = pytest.mark.integration


@pytest.fixture(params=PRODUCER_CLIENTS, ids=PRODUCER_CLIENTS)
def client(request) -> str:
    return request.param


def messages_in(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def records_in(bootstrap: str, topic: str) -> list:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


def producer(settings, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app.producer"],
        cwd=REPO,
        env=child_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_a_bounded_run_sends_every_event_and_accounts_for_it(broker, topic, tmp_path, client):
    settings = make_settings(
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic=topic,
        producer_client=client,
        producer_count="600",
        producer_rate="300",
        producer_manifest=str(tmp_path / "manifest.json"),
        fault_malformed_rate="0.05",
        fault_duplicate_rate="0.05",
    )
    run = producer(settings)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["generated"] == 600 and summary["failed"] == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    duplicates = manifest["duplicates_sent"]
    assert summary["sent"] == 600 + duplicates == messages_in(broker.bootstrap, topic)
    assert manifest["counted_events"] + manifest["rejected"]["malformed_json"] == 600
    # The first report comes as soon as Kafka has acknowledged events, not 10 s later.
    assert "app.producer generated=" in err
    # Keyed by user_id, in the partition Java's murmur2 gives it, whichever client sent it.
    records = records_in(broker.bootstrap, topic)
    keyed = [r for r in records if r.key is not None]
    assert len(records) == summary["sent"]
    assert len(keyed) == summary["sent"] - manifest["rejected"]["malformed_json"]
    assert all(json.loads(r.value)["user_id"] == r.key.decode() for r in keyed)
    assert [r.partition for r in keyed] == [(murmur2(r.key) & 0x7FFFFFFF) % 3 for r in keyed]


def test_sigterm_flushes_what_is_buffered_and_exits_0(broker, topic, client):
    settings = make_settings(
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic=topic,
        producer_rate="500",
        producer_client=client,
    )
    run = producer(settings)
    time.sleep(4)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["failed"] == 0 and summary["sent"] == summary["generated"] > 500
    assert messages_in(broker.bootstrap, topic) == summary["sent"]


def test_a_bad_setting_stops_it_before_it_connects(tmp_path, client):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.producer",
            "--producer-client",
            client,
            "--producer-rate",
            "-1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.endswith(
        "python -m app.producer: setting error: PRODUCER_RATE='-1': expected a number above 0\n"
    )
