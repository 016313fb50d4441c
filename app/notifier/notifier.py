"""What the notifier does with each message, and the pipeline_stalled rule, without Kafka.

Each alert change is posted once: the ledger (app/notifier/ledger.py) says whether it has
been dealt with. A firing of a rule and subject whose previous posted firing started less
than NOTIFY_COOLDOWN before it is suppressed, and so is that alert's resolution: a
flapping page sends one pair of messages per cooldown, not one per flap. Times are the
alerts' own (first_seen), so a notifier catching up after a stop decides as it would have
live.

pipeline_stalled (records have waited in the events topic for ALERT_STALL_AFTER with no
batch finishing) is judged here, because it must fire while the processor is down. From
the moment records are first seen waiting, not from the last batch: after an idle
spell (nothing sent, so rightly no batch) the next records are no stall until they have
waited that long. The moment is kept in the ledger, so a restarted notifier gives the
alert the same id and finds it there. Each stall change is published to the alerts topic
before it is dealt with (`publish`), so the processor writes it to the alerts table when
it runs again; a crash in between publishes it again, which adds no row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from app.alerts.rules import FIRING, PIPELINE_STALLED, RESOLVED, Alert, alert_id
from app.alerts.topic import ms_of
from app.notifier import webhook
from app.notifier.ledger import LOGGED, POSTED, REFUSED, SUPPRESSED, Ledger

log = logging.getLogger("app.notifier")

LAST_HEARTBEAT = "last_heartbeat_ms"
OFFSETS_AT_HEARTBEAT = "events_offsets_at_heartbeat"
# When records were first seen waiting since the last heartbeat (none: nothing waits).
WAITING_SINCE = "records_waiting_since_ms"


@dataclass(frozen=True)
class NotifierOptions:
    webhook_url: str
    cooldown_seconds: float
    retries: int
    stall_after_seconds: float
    events_topic: str
    backoff_seconds: float = 1.0


class Notifier:
    def __init__(
        self,
        options: NotifierOptions,
        ledger: Ledger,
        post: Callable[..., None] = webhook.post,
        publish: Callable[[Alert], None] | None = None,
    ) -> None:
        self.options, self.ledger, self._post = options, ledger, post
        # Where the notifier's own alert changes (pipeline_stalled) go for the alerts table.
        self._publish = publish

    # ------------------------------------------------------------------ alert changes
    def handle(self, alert: Alert, now_ms: int) -> str:
        """Deal with one alert change once; return what was done with it."""
        done = self.ledger.outcome(alert.alert_id, alert.state)
        if done is not None:
            return done
        outcome = self._decide(alert)
        if outcome in (POSTED, LOGGED):
            log.warning("alert %s", alert.message)
        if outcome == POSTED:
            try:
                self._post(
                    self.options.webhook_url,
                    webhook.payload(alert),
                    self.options.retries,
                    self.options.backoff_seconds,
                )
            except webhook.Refused as exc:
                log.error("alert %s not delivered: %s", alert.alert_id, exc)
                outcome = REFUSED
        self.ledger.record(
            alert.alert_id,
            alert.state,
            alert.rule,
            alert.subject,
            alert.first_seen_ms,
            outcome,
            now_ms,
        )
        return outcome

    def _decide(self, alert: Alert) -> str:
        sent = POSTED if self.options.webhook_url else LOGGED
        if alert.state == RESOLVED:
            # Resolved goes where its firing went; a firing never seen (it came before
            # this ledger) is announced resolved all the same.
            firing = self.ledger.outcome(alert.alert_id, FIRING)
            return SUPPRESSED if firing == SUPPRESSED else sent
        previous = self.ledger.last_posted_firing_ms(alert.rule, alert.subject, alert.first_seen_ms)
        cooldown_ms = self.options.cooldown_seconds * 1000
        if previous is not None and alert.first_seen_ms - previous < cooldown_ms:
            log.info("alert %s suppressed (cooldown)", alert.alert_id)
            return SUPPRESSED
        return sent

    # ------------------------------------------------------------------ pipeline_stalled
    def heartbeat(self, message: dict, end_offsets: dict[str, int], now_ms: int) -> list[str]:
        """A batch ended: remember when, and with what the topic held; resolve a stall."""
        sent_ms = ms_of(message["sent_at"]) or now_ms
        last = self.ledger.get(LAST_HEARTBEAT)
        if last is not None and int(last) >= sent_ms:
            return []  # an older heartbeat, read again after a restart
        self.ledger.put(LAST_HEARTBEAT, str(sent_ms))
        self.ledger.put(OFFSETS_AT_HEARTBEAT, json.dumps(end_offsets))
        self.ledger.put(WAITING_SINCE, "")
        outcomes = []
        for stall_id, subject, first_seen_ms in self.ledger.open_firing(PIPELINE_STALLED):
            waited = (sent_ms - first_seen_ms) / 1000 + self.options.stall_after_seconds
            resolved = self._stall(subject, first_seen_ms, waited, RESOLVED, sent_ms)
            assert resolved.alert_id == stall_id
            outcomes.append(self._own(resolved, now_ms))
        return outcomes

    def check_stall(self, end_offsets: dict[str, int], now_ms: int) -> str | None:
        """Fire pipeline_stalled once records have waited ALERT_STALL_AFTER with no batch."""
        if self.ledger.get(LAST_HEARTBEAT) is None:
            return None  # never seen a batch: nothing to compare with
        before = json.loads(self.ledger.get(OFFSETS_AT_HEARTBEAT) or "{}")
        if not any(end > before.get(partition, 0) for partition, end in end_offsets.items()):
            self.ledger.put(WAITING_SINCE, "")
            return None  # idle, not stalled: nothing has arrived since the last batch
        since = self.ledger.get(WAITING_SINCE)
        if not since:
            self.ledger.put(WAITING_SINCE, str(now_ms))
            since = str(now_ms)
        waited_ms = now_ms - int(since)
        if waited_ms < self.options.stall_after_seconds * 1000:
            return None
        first_seen_ms = int(since) + int(self.options.stall_after_seconds * 1000)
        topic = self.options.events_topic
        alert = self._stall(topic, first_seen_ms, waited_ms / 1000, FIRING, now_ms)
        return self._own(alert, now_ms)

    def _own(self, alert: Alert, now_ms: int) -> str:
        """A change the notifier judged itself: published for the table, then dealt with."""
        if self._publish is not None and self.ledger.outcome(alert.alert_id, alert.state) is None:
            self._publish(alert)
        return self.handle(alert, now_ms)

    def _stall(
        self, subject: str, first_seen_ms: int, waited_seconds: float, state: str, at_ms: int
    ) -> Alert:
        return Alert(
            alert_id=alert_id(PIPELINE_STALLED, subject, first_seen_ms),
            rule=PIPELINE_STALLED,
            subject=subject,
            state=state,
            value=round(waited_seconds, 3),
            baseline=0.0,
            threshold=self.options.stall_after_seconds,
            first_seen_ms=first_seen_ms,
            last_seen_ms=at_ms,
            resolved_ms=at_ms if state == RESOLVED else None,
        )
