"""The alerts topic: alert changes and the processor's heartbeats, for the notifier.

Why a topic and not the alerts table: the notifier must work when the processor is down
(that is when pipeline_stalled fires), and with the embedded engine (chdb://) only the
processor's own process can open the tables. Kafka is there on every install.

Two kinds of message, JSON, keyed by alert id or query id (the README documents them):
- {"kind": "alert", ...alert_json(alert)}: an alert opened (state firing) or resolved.
- {"kind": "heartbeat", "query_id", "batch_id", "batch_time", "sent_at"}: a batch ended.
A replayed batch publishes its messages again; the notifier posts each alert change once
(its ledger knows the ids), so a repeat costs nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from app.alerts.rules import Alert

ALERT = "alert"
HEARTBEAT = "heartbeat"
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

    def publish(self, alerts: Sequence[Alert], heartbeat: dict[str, Any]) -> None:
        futures = [
            self._producer.send(
                self.topic,
                key=alert.alert_id.encode(),
                value=json.dumps({"kind": ALERT, **alert_json(alert)}).encode(),
            )
            for alert in alerts
        ]
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
