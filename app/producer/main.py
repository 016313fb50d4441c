"""The producer's run loop: generate at a steady rate, inject faults, publish, account."""

from __future__ import annotations

import json
import logging
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from app import settings as settings_module
from app.lifecycle import setup_logging, stop_on_signals
from app.producer.faults import FaultInjector, FaultRates
from app.producer.incident import Incident, IncidentFilter
from app.producer.manifest import Manifest
from app.producer.publisher import PUBLISH_ERRORS, open_publisher
from app.producer.traffic import TrafficModel
from app.settings import Settings

log = logging.getLogger("app.producer")

REPORT_EVERY_SECONDS = 10.0


@dataclass
class RunSummary:
    generated: int
    sent: int
    failed: int
    seconds: float
    suppressed: int = 0  # generated, but held back by a staged incident (not sent)

    def to_json(self) -> str:
        return json.dumps(
            {
                "generated": self.generated,
                "sent": self.sent,
                "failed": self.failed,
                "seconds": round(self.seconds, 2),
                "suppressed": self.suppressed,
                "events_per_second": round(self.generated / self.seconds, 1) if self.seconds else 0,
            }
        )


def fault_rates(settings: Settings) -> FaultRates:
    return FaultRates(
        malformed=settings.fault_malformed_rate,
        null_user=settings.fault_null_user_rate,
        null_page=settings.fault_null_page_rate,
        late=settings.fault_late_rate,
        duplicate=settings.fault_duplicate_rate,
        late_delay_seconds=settings.fault_late_delay,
    )


def run(settings: Settings, stop: threading.Event) -> RunSummary:
    # A fresh nonce per start: same traffic for the same seed, never the same event_ids.
    model = TrafficModel(
        settings.producer_seed,
        settings.producer_bot_share,
        concurrent_sessions=settings.producer_concurrent_sessions,
        run_nonce=secrets.randbits(128),
        record_labels=bool(settings.producer_manifest),
    )
    faults = FaultInjector(fault_rates(settings), settings.producer_seed)
    incident = IncidentFilter(Incident.from_settings(settings), settings.producer_seed)
    manifest = (
        Manifest(settings.window_duration, labels=model.labels)
        if settings.producer_manifest
        else None
    )
    publisher = open_publisher(
        settings.producer_client,
        settings.kafka_bootstrap_servers,
        settings.kafka_topic,
        settings.producer_compression,
        on_ack=manifest.acknowledged if manifest else None,
    )
    started = time.monotonic()
    next_report = started + REPORT_EVERY_SECONDS
    generated = 0
    reported = False
    try:
        while not stop.is_set():
            if settings.producer_count and generated >= settings.producer_count:
                break
            now = time.monotonic()
            if settings.producer_duration and now - started >= settings.producer_duration:
                break
            # Pace against the start time, not the last event, so rounding never drifts.
            delay = started + generated / settings.producer_rate - now
            if delay > 0 and stop.wait(delay):
                break
            event = model.next_event(datetime.now(UTC))
            generated += 1
            if manifest:
                manifest.incident_at(incident.incident, now - started, event["event_time"])
            if not incident.keeps(event, now - started):
                continue
            for message in faults.apply(event):
                publisher.send(message)
            # Report every few seconds, and once as soon as Kafka has acknowledged the
            # first events: that line tells a supervisor the producer is up.
            if now >= next_report or (not reported and publisher.stats.sent):
                reported = True
                next_report = now + REPORT_EVERY_SECONDS
                log.info(
                    "generated=%d sent=%d failed=%d",
                    generated,
                    publisher.stats.sent,
                    publisher.stats.failed,
                )
        for message in faults.pending():
            publisher.send(message)
    finally:
        publisher.close()
        if manifest:
            manifest.write(settings.producer_manifest)
    return RunSummary(
        generated,
        publisher.stats.sent,
        publisher.stats.failed,
        time.monotonic() - started,
        incident.suppressed,
    )


def main(argv: list[str] | None = None) -> int:
    settings, _ = settings_module.from_cli(
        "Generate click events and publish them to Kafka.",
        ["kafka", "producer", "processor"],
        argv,
        prog="python -m app.producer",
    )
    # The Kafka clients narrate every connection at INFO; their warnings are what matter.
    setup_logging()
    stop = threading.Event()
    # SIGTERM (systemd, the demo) and Ctrl-C both end the loop; run() then flushes.
    stop_on_signals(stop)
    try:
        summary = run(settings, stop)
    except PUBLISH_ERRORS as exc:
        print(
            f"producer: Kafka error with KAFKA_BOOTSTRAP_SERVERS="
            f"{settings.kafka_bootstrap_servers}: {exc}",
            file=sys.stderr,
        )
        return 1
    print(summary.to_json(), flush=True)
    if summary.failed:
        print(f"producer: {summary.failed} events could not be sent", file=sys.stderr)
        return 1
    return 0
