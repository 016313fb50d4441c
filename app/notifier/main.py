"""The notifier's entry point: read the alerts topic, post each change once, watch for stalls.

It commits its Kafka offset only after the ledger holds what it did with every message up
to it, so a SIGKILL at any moment loses nothing and (the ledger) repeats nothing.
"""

from __future__ import annotations

import logging
import threading
import time

from app import settings as settings_module
from app.alerts.topic import ALERT, HEARTBEAT, AlertsTopic, alert_in, heartbeat_in, parse
from app.lifecycle import setup_logging, stop_on_signals
from app.notifier.ledger import Ledger
from app.notifier.notifier import Notifier, NotifierOptions
from app.settings import Settings

log = logging.getLogger("app.notifier")

# The consumer group is the topic's: notifiers of two installs on one broker never share.
GROUP_PREFIX = "clickstream-notifier."
POLL_MS = 500


def _now_ms() -> int:
    return int(time.time() * 1000)


def run(settings: Settings, stop: threading.Event) -> int:
    from kafka import KafkaConsumer, TopicPartition

    from app.runtime.broker import ensure_topic

    ensure_topic(settings.kafka_bootstrap_servers, settings.alerts_topic, 1)
    ledger = Ledger(settings.notifier_state)
    alerts_topic = AlertsTopic(settings.kafka_bootstrap_servers, settings.alerts_topic)
    notifier = Notifier(
        NotifierOptions(
            webhook_url=settings.notify_webhook_url,
            cooldown_seconds=settings.notify_cooldown,
            retries=settings.notify_retries,
            stall_after_seconds=settings.alert_stall_after,
            events_topic=settings.kafka_topic,
        ),
        ledger,
        publish=alerts_topic.publish_alert,
    )
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        group_id=GROUP_PREFIX + settings.alerts_topic,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    # Its partitions assigned, not subscribed: a restarted notifier reads from its
    # committed offset at once, instead of waiting out the killed one's group session
    # (a rebalance held back a restarted notifier's first post by about 20 s).
    alert_partitions = consumer.partitions_for_topic(settings.alerts_topic) or {0}
    consumer.assign([TopicPartition(settings.alerts_topic, p) for p in sorted(alert_partitions)])

    def end_offsets() -> dict[str, int]:
        partitions = consumer.partitions_for_topic(settings.kafka_topic) or set()
        found = consumer.end_offsets([TopicPartition(settings.kafka_topic, p) for p in partitions])
        return {str(tp.partition): offset for tp, offset in found.items()}

    where = "the webhook" if settings.notify_webhook_url else "the log only (no webhook set)"
    log.info("reading %s; alerts go to %s", settings.alerts_topic, where)
    try:
        while not stop.is_set():
            polled = consumer.poll(timeout_ms=POLL_MS)
            # One look at the events topic per poll, for every heartbeat in it and the
            # stall check: a notifier catching up on an hour of heartbeats asks once per
            # poll, not once per heartbeat.
            offsets = end_offsets()
            for records in polled.values():
                for record in records:
                    # A message that is not one of ours is skipped (and logged): one bad
                    # message must not stop every notification after it.
                    message = parse(record.value)
                    kind = message.get("kind") if message is not None else None
                    if kind == ALERT and (alert := alert_in(message)) is not None:
                        notifier.handle(alert, _now_ms())
                    elif kind == HEARTBEAT and heartbeat_in(message) is not None:
                        notifier.heartbeat(message, offsets, _now_ms())
            if polled:
                consumer.commit()
            notifier.check_stall(offsets, _now_ms())
    finally:
        consumer.close(autocommit=False)
        alerts_topic.close()
        ledger.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    settings, _ = settings_module.from_cli(
        "Post alert changes to a Slack-compatible webhook, once each; judge pipeline stalls.",
        ["kafka", "alerts", "notifier"],
        argv,
        prog="python -m app.notifier",
    )
    setup_logging()
    stop = threading.Event()
    stop_on_signals(stop)
    return run(settings, stop)
