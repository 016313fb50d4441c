"""The alerts topic: alert changes and the processor's heartbeats, for the notifier.

Why a topic and not the alerts table: the notifier must work when the processor is down
(that is when pipeline_stalled fires), and with the embedded engine (chdb://) only the
processor's own process can open the tables. Kafka is there on every install.

Two kinds of message, JSON, keyed by alert id or query id (the README documents them):
- {"kind": "alert", "origin", ...alert_json(alert)}: an alert opened (state firing) or
  resolved, judged by the processor (origin "processor") or the notifier ("notifier":
  pipeline_stalled, which must fire while the processor is down).
- {"kind": "heartbeat", "query_id", "batch_id", "batch_time", "sent_at"}: a batch ended.
A replayed batch publishes its messages again; the notifier posts each alert change once
(its ledger knows the ids), so a repeat costs nothing. The processor reads the notifier's
changes back (NotifierAlerts) and writes them to the alerts table, which only it can open.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from app.alerts.rules import Alert

log = logging.getLogger(__name__)

ALERT = "alert"
HEARTBEAT = "heartbeat"
PROCESSOR = "processor"
NOTIFIER = "notifier"
SEND_TIMEOUT_SECONDS = 30.0


def iso_ms(ms: int | None) -> str | None:
    """UTC ISO 8601 with milliseconds and a Z, or None."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def ms_of(iso: str | None) -> int | None:
    if iso is None:
        return None
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def alert_json(alert: Alert) -> dict[str, Any]:
    """An alert as the topic and the webhook carry it."""
    return {
        "alert_id": alert.alert_id,
        "rule": alert.rule,
        "subject": alert.subject,
        "state": alert.state,
        "value": alert.value,
        "baseline": alert.baseline,
        "threshold": alert.threshold,
        "first_seen": iso_ms(alert.first_seen_ms),
        "last_seen": iso_ms(alert.last_seen_ms),
        "resolved_at": iso_ms(alert.resolved_ms),
        "message": alert.message,
    }


def alert_from_json(data: dict[str, Any]) -> Alert:
    return Alert(
        alert_id=data["alert_id"],
        rule=data["rule"],
        subject=data["subject"],
        state=data["state"],
        value=float(data["value"]),
        baseline=float(data["baseline"]),
        threshold=float(data["threshold"]),
        first_seen_ms=ms_of(data["first_seen"]) or 0,
        last_seen_ms=ms_of(data["last_seen"]) or 0,
        resolved_ms=ms_of(data.get("resolved_at")),
    )


def heartbeat_json(query_id: str, batch_id: int, batch_time_ms: int) -> dict[str, Any]:
    return {
        "kind": HEARTBEAT,
        "query_id": query_id,
        "batch_id": batch_id,
        "batch_time": iso_ms(batch_time_ms),
        "sent_at": iso_ms(int(time.time() * 1000)),
    }


class AlertsTopic:
    """Publishes to the alerts topic (acks=all, idempotent), waiting until Kafka has it."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        from kafka import KafkaProducer

        self.topic = topic
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers.split(","),
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
        )

    def _send_alert(self, alert: Alert, origin: str) -> Any:
        message = {"kind": ALERT, "origin": origin, **alert_json(alert)}
        return self._producer.send(
            self.topic, key=alert.alert_id.encode(), value=json.dumps(message).encode()
        )

    def publish_alert(self, alert: Alert, origin: str = NOTIFIER) -> None:
        """One alert change, waited for: the notifier's pipeline_stalled."""
        self._send_alert(alert, origin).get(timeout=SEND_TIMEOUT_SECONDS)

    def publish(self, alerts: Sequence[Alert], heartbeat: dict[str, Any]) -> None:
        """A batch's alert changes and its heartbeat, in that order, waited for."""
        futures = [self._send_alert(alert, PROCESSOR) for alert in alerts]
        futures.append(
            self._producer.send(
                self.topic,
                key=str(heartbeat["query_id"]).encode(),
                value=json.dumps(heartbeat).encode(),
            )
        )
        for future in futures:
            future.get(timeout=SEND_TIMEOUT_SECONDS)

    def close(self) -> None:
        self._producer.close(timeout=SEND_TIMEOUT_SECONDS)


def parse(value: bytes | None) -> dict[str, Any] | None:
    """A message of the topic as a JSON object; None (and a warning) for anything else.

    The topic is readable and writable by anyone on the host: no message in it may stop
    the query or the notifier.
    """
    try:
        message = json.loads(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        log.warning("alerts topic: a message that is not JSON skipped: %r", exc)
        return None
    if not isinstance(message, dict):
        log.warning("alerts topic: a message that is not a JSON object skipped")
        return None
    return message


def alert_in(message: dict[str, Any]) -> Alert | None:
    """The alert change a message carries; None (and a warning) if it is not a whole one."""
    try:
        return alert_from_json(message)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        log.warning("alerts topic: an alert message without a valid %s skipped", exc)
        return None


def heartbeat_in(message: dict[str, Any]) -> dict[str, Any] | None:
    """A heartbeat whose sent_at is a time; None (and a warning) otherwise."""
    try:
        ms_of(message["sent_at"])
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        log.warning("alerts topic: a heartbeat without a valid sent_at skipped: %r", exc)
        return None
    return message


def _notifier_alert(value: bytes | None) -> Alert | None:
    """The notifier's alert change in a message of the topic; None for any other message."""
    message = parse(value)
    if message is None or message.get("kind") != ALERT or message.get("origin") != NOTIFIER:
        return None
    return alert_in(message)


class NotifierAlerts:
    """The processor's reader of the notifier's alert changes, for the alerts table.

    Its own consumer group; take() returns what has arrived (never waits for more), and
    commit() is called once the rows are in the table, so a crash in between reads them
    again: their inserts carry a token per alert and state, so a repeat adds nothing.
    """

    GROUP_PREFIX = "clickstream-processor."

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers.split(","),
            group_id=self.GROUP_PREFIX + topic,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        # Assigned, not subscribed, like the notifier: no rebalance wait after a restart.
        self._consumer.assign([TopicPartition(topic, 0)])

    def take(self) -> list[Alert]:
        polled = self._consumer.poll(timeout_ms=0, max_records=10_000)
        found = []
        for records in polled.values():
            for record in records:
                alert = _notifier_alert(record.value)
                if alert is not None:
                    found.append(alert)
        return found

    def commit(self) -> None:
        self._consumer.commit()

    def close(self) -> None:
        self._consumer.close(autocommit=False)
