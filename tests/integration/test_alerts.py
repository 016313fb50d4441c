"""Alerts end to end: a staged /cart outage, the notifier, a real HTTP receiver, kill -9.

The real producer stages the incident (INCIDENT_*), the real processor (its own process,
chDB) judges the rules after each batch and publishes changes to the alerts topic on the
real broker, the real notifier (its own process) posts them to a receiver on the loopback.
Processes are killed with SIGKILL during the incident; the receiver must still get
exactly one firing and one resolved message per alert, in time.

The clock: the producer stamps events with the wall clock, so the manifest's incident
span (event time) is when the outage started and ended in wall-clock time.
"""

from __future__ import annotations

import json
import secrets
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from app.alerts.topic import NotifierAlerts
from app.contract import encode
from app.processor import job
from app.producer.traffic import TrafficModel
from app.storage.embedded import EmbeddedStore
from app.storage.migrations import migrate
from tests.conftest import SPARK_KAFKA_JARS, make_settings
from tests.integration.conftest import publish
from tests.integration.test_restart import kill_9, note, start
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.integration

RATE = 300  # events/s: /cart gets about 15 of them a second
INCIDENT_START = 45  # s after the producer starts: the processor is up, a baseline exists
INCIDENT_DURATION = 30
FIRE_WITHIN = 30  # s after the outage starts (the bar)
RESOLVE_WITHIN = 60  # s after the page recovers


def alert_settings(broker, topic, tmp_path: Path, receiver: Receiver, **extra):
    return make_settings(
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic=topic,
        alerts_topic=f"{topic}.alerts",
        clickhouse_url=f"chdb://{tmp_path}/clickhouse",
        checkpoint_dir=str(tmp_path / "checkpoints"),
        spark_jars=str(SPARK_KAFKA_JARS),
        spark_master="local[2]",
        trigger_interval="1s",
        max_offsets_per_trigger="20000",
        watermark_delay="5s",
        producer_rate=str(RATE),
        producer_seed="11",
        producer_manifest=str(tmp_path / "manifest.json"),
        producer_concurrent_sessions="200",
        incident_page="/cart",
        incident_start=f"{INCIDENT_START}s",
        incident_duration=f"{INCIDENT_DURATION}s",
        alert_baseline="30s",
        notify_webhook_url=receiver.url,
        notifier_state=str(tmp_path / "notifier.sqlite"),
        **extra,
    )


def wait_for(condition, timeout: float, what: str, processes=()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for process, log in processes:
            assert process.poll() is None, f"{log.name} exited early:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f}s"
        time.sleep(0.2)


def start_pipeline(settings, logs: dict[str, Path]):
    """The processor and the notifier, running before the producer starts.

    The incident's clock is the producer's: started after the query runs, the outage
    falls on a warm job, as on an appliance that has been up for a while.
    """
    processor = start("app.processor", settings, logs["processor"])
    notifier = start("app.notifier", settings, logs["notifier"])
    for process, log, line in (
        (processor, logs["processor"], "started clickstream"),
        (notifier, logs["notifier"], "reading"),
    ):
        wait_for(
            lambda log=log, line=line: log.exists() and line in log.read_text(),
            180,
            f"{log.name}: {line!r}",
            [(process, log)],
        )
    return processor, notifier


def stop(process, timeout: float = 60) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except Exception:
            kill_9(process)


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def cart_alert(receiver: Receiver) -> str | None:
    ids = [a for a, state in receiver.received() if a.startswith("page_drop:/cart:")]
    return ids[0] if ids else None


def check_incident(receiver: Receiver, tmp_path: Path, name: str) -> str:
    """The /cart alert fired within 30 s of the outage and resolved within 60 s of its end."""
    truth = json.loads((tmp_path / "manifest.json").read_text())["incident"]
    alert = cart_alert(receiver)
    assert alert is not None
    fired = receiver.arrival(alert, "firing") - epoch(truth["started_at"])
    resolved = receiver.arrival(alert, "resolved") - epoch(truth["ended_at"])
    print(
        f"\n{name}: fired {fired:.1f} s after the outage began, resolved {resolved:.1f} s "
        "after it ended"
    )
    assert 0 < fired <= FIRE_WITHIN
    assert 0 < resolved <= RESOLVE_WITHIN
    return alert


def stored_alerts(tmp_path: Path) -> list[dict]:
    store = EmbeddedStore(str(tmp_path / "clickhouse"), "clickstream")
    try:
        return store.query(
            "SELECT rule, subject, state, baseline FROM alerts_latest ORDER BY first_seen"
        )
    finally:
        store.close()


def test_cart_goes_silent_one_firing_one_resolved_through_a_notifier_kill(broker, topic, tmp_path):
    with Receiver() as receiver:
        settings = alert_settings(broker, topic, tmp_path, receiver, incident_traffic_share="0")
        logs = {name: tmp_path / f"{name}.log" for name in ("processor", "notifier", "producer")}
        processor, notifier = start_pipeline(settings, logs)
        producer = start("app.producer", settings, logs["producer"])
        running = [(processor, logs["processor"]), (producer, logs["producer"])]
        try:
            note("started; waiting for the /cart alert")
            wait_for(lambda: cart_alert(receiver), INCIDENT_START + 60, "firing", running)
            # The notifier dies with the alert open; its successor must not post it again.
            kill_9(notifier)
            notifier = start("app.notifier", settings, logs["notifier"])
            note("notifier killed and restarted")
            alert = cart_alert(receiver)
            wait_for(
                lambda: receiver.arrival(alert, "resolved"),
                INCIDENT_DURATION + RESOLVE_WITHIN + 30,
                "resolved",
                running,
            )
            time.sleep(5)  # room for a repeat, if there were one
        finally:
            stop(producer)
            stop(processor)
            stop(notifier)
        alert = check_incident(receiver, tmp_path, "/cart to zero, notifier killed")
        assert receiver.received() == [(alert, "firing"), (alert, "resolved")]
        body = receiver.bodies[0]
        assert body["alert"]["value"] <= body["alert"]["threshold"]
        assert body["text"].startswith(":rotating_light: FIRING page_drop - /cart:")
    rows = stored_alerts(tmp_path)
    assert [(r["rule"], r["subject"], r["state"]) for r in rows] == [
        ("page_drop", "/cart", "resolved")
    ]


def processor_has_read(bootstrap: str, alerts_topic: str, end: int) -> bool:
    """Has the processor committed its read of the alerts topic up to `end`?"""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=NotifierAlerts.GROUP_PREFIX + alerts_topic
    )
    try:
        return (consumer.committed(TopicPartition(alerts_topic, 0)) or 0) >= end
    finally:
        consumer.close(autocommit=False)


def alerts_end(bootstrap: str, alerts_topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partition = TopicPartition(alerts_topic, 0)
        return consumer.end_offsets([partition])[partition]
    finally:
        consumer.close()


def test_cart_at_a_fifth_then_a_stall_through_a_processor_kill(broker, topic, tmp_path):
    stall_after = 45  # longer than a restart takes, so the first kill is no stall
    with Receiver() as receiver:
        settings = alert_settings(
            broker,
            topic,
            tmp_path,
            receiver,
            incident_traffic_share="0.2",
            alert_stall_after=f"{stall_after}s",
        )
        logs = {name: tmp_path / f"{name}.log" for name in ("processor", "notifier", "producer")}
        processor, notifier = start_pipeline(settings, logs)
        producer = start("app.producer", settings, logs["producer"])
        try:
            note("started; waiting for the /cart alert")
            wait_for(
                lambda: cart_alert(receiver),
                INCIDENT_START + 60,
                "firing",
                [(processor, logs["processor"]), (notifier, logs["notifier"])],
            )
            # The processor dies with the alert open: its replayed batch publishes the
            # same change again, which the notifier has posted already.
            kill_9(processor)
            processor = start("app.processor", settings, logs["processor"])
            note("processor killed and restarted")
            alert = cart_alert(receiver)
            wait_for(
                lambda: receiver.arrival(alert, "resolved"),
                INCIDENT_DURATION + RESOLVE_WITHIN + 30,
                "resolved",
                [(processor, logs["processor"]), (notifier, logs["notifier"])],
            )
            # Now the processor stops while the producer goes on: pipeline_stalled.
            kill_9(processor)
            stopped_at = time.time()
            note("processor stopped; waiting for pipeline_stalled")
            wait_for(
                lambda: len(receiver.received()) == 3,
                stall_after + 30,
                "pipeline_stalled firing",
                [(notifier, logs["notifier"])],
            )
            stalled_after = receiver.times[2] - stopped_at
            processor = start("app.processor", settings, logs["processor"])
            wait_for(
                lambda: len(receiver.received()) == 4,
                120,
                "pipeline_stalled resolved",
                [(processor, logs["processor"]), (notifier, logs["notifier"])],
            )
            # The notifier published the stall's two changes before posting them; the
            # processor writes them to the alerts table (only it can open the store).
            end = alerts_end(broker.bootstrap, settings.alerts_topic)
            wait_for(
                lambda: processor_has_read(broker.bootstrap, settings.alerts_topic, end),
                60,
                "the stall in the alerts table",
                [(processor, logs["processor"]), (notifier, logs["notifier"])],
            )
        finally:
            stop(producer)
            stop(processor)
            stop(notifier)
        alert = check_incident(receiver, tmp_path, "/cart at 20%, processor killed")
        stall = receiver.received()[2][0]
        assert stall.startswith(f"pipeline_stalled:{topic}:")
        assert receiver.received() == [
            (alert, "firing"),
            (alert, "resolved"),
            (stall, "firing"),
            (stall, "resolved"),
        ]
        print(f"pipeline_stalled posted {stalled_after:.1f} s after the processor stopped")
        # From the kill, not from the last heartbeat (up to a batch earlier).
        assert stall_after - 5 <= stalled_after <= stall_after + 15
    rows = stored_alerts(tmp_path)
    # The frozen baseline: what /cart had before the outage, about 150 in 10 s.
    assert [(r["rule"], r["subject"], r["state"]) for r in rows] == [
        ("page_drop", "/cart", "resolved"),
        ("pipeline_stalled", topic, "resolved"),
    ]
    assert 100 < rows[0]["baseline"] < 220


def test_a_clean_ten_minute_stream_fires_nothing(spark, broker, topic, tmp_path):
    """Ten minutes of event time from the traffic model, judged batch by batch: no alert.

    The events are generated with event times spread over the ten minutes before now and
    read as a backlog, so the job is honestly behind; pipeline_behind's limits are raised
    here (it would be right to fire), every other rule keeps its default.
    """
    rate, minutes = 200, 10
    model = TrafficModel(7, run_nonce=secrets.randbits(128))
    end = datetime.now(UTC) - timedelta(seconds=5)
    count = rate * 60 * minutes
    values = [
        encode(model.next_event(end - timedelta(seconds=(count - n) / rate))) for n in range(count)
    ]
    publish(broker.bootstrap, topic, values)
    cart_per_window = sum(b'"page_url":"/cart"' in v for v in values) / (60 * minutes) * 10
    note(f"published {count} events over {minutes} min; /cart {cart_per_window:.0f} per 10 s")
    settings = make_settings(
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic=topic,
        alerts_topic=f"{topic}.alerts",
        checkpoint_dir=str(tmp_path / "checkpoints"),
        max_offsets_per_trigger="2000",  # 10 s of event time a batch: 60 judgements
        alert_max_freshness="1h",
        alert_max_lag="10000000",
    )
    # /cart is busy enough to be judged (not "too quiet"), with room to spare.
    assert cart_per_window > 2 * settings.alert_min_expected
    store = EmbeddedStore(str(tmp_path / "clickhouse"), "clickstream")
    try:
        migrate(store)
        pipeline = job.start(spark, settings, store, available_now=True)
        for query in pipeline.queries:
            query.awaitTermination()
        pipeline.stop()
        batches = store.query("SELECT count() AS n FROM pipeline_progress")[0]["n"]
        assert batches >= 60
        assert store.query("SELECT count() AS n FROM alerts") == [{"n": 0}]
    finally:
        store.close()
