"""The notifier against a real HTTP receiver on the loopback: each change posted once.

Kafka is left out here (tests/integration/test_alerts.py runs the whole thing); these
tests call what the notifier's loop calls for each message.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.alerts import rules as R
from app.alerts.topic import alert_from_json, alert_json, heartbeat_json
from app.notifier import webhook
from app.notifier.ledger import LOGGED, POSTED, REFUSED, SUPPRESSED, Ledger
from app.notifier.notifier import Notifier, NotifierOptions
from tests.conftest import make_settings
from tests.webhook_receiver import Receiver

T = 1_764_662_400_000  # 2025-12-02T08:00:00Z
FIRING = R.Alert(
    "page_drop:/cart:2025-12-02T08:00:00.000Z",
    R.PAGE_DROP,
    "/cart",
    R.FIRING,
    0.0,
    30.0,
    15.0,
    T,
    T,
    None,
)
RESOLVED = replace(
    FIRING, state=R.RESOLVED, value=29.0, last_seen_ms=T + 40_000, resolved_ms=T + 40_000
)


def notifier(tmp_path, url: str, cooldown: float = 300, stall_after: float = 60) -> Notifier:
    options = NotifierOptions(
        webhook_url=url,
        cooldown_seconds=cooldown,
        retries=3,
        stall_after_seconds=stall_after,
        events_topic="clickstream.events",
        backoff_seconds=0.01,
    )
    return Notifier(options, Ledger(str(tmp_path / "notifier.sqlite")))


def test_one_firing_and_one_resolved_message_with_the_documented_body(tmp_path):
    with Receiver() as receiver:
        first = notifier(tmp_path, receiver.url)
        assert first.handle(FIRING, T) == POSTED
        assert first.handle(FIRING, T + 1) == POSTED  # read again: not posted again
        # A restart (a new notifier on the same ledger) posts nothing it has posted.
        again = notifier(tmp_path, receiver.url)
        assert again.handle(FIRING, T + 2) == POSTED
        assert again.handle(RESOLVED, T + 40_000) == POSTED
        assert again.handle(RESOLVED, T + 40_001) == POSTED
    assert receiver.received() == [(FIRING.alert_id, "firing"), (FIRING.alert_id, "resolved")]
    assert receiver.bodies[0] == {
        "text": ":rotating_light: FIRING page_drop - /cart: 0 events in the last window, "
        "30.0 expected",
        "alert": {
            "alert_id": "page_drop:/cart:2025-12-02T08:00:00.000Z",
            "rule": "page_drop",
            "subject": "/cart",
            "state": "firing",
            "value": 0.0,
            "baseline": 30.0,
            "threshold": 15.0,
            "first_seen": "2025-12-02T08:00:00.000Z",
            "last_seen": "2025-12-02T08:00:00.000Z",
            "resolved_at": None,
            "message": "FIRING page_drop - /cart: 0 events in the last window, 30.0 expected",
        },
    }
    assert receiver.bodies[1]["text"].startswith(":white_check_mark: RESOLVED page_drop")
    assert alert_from_json(receiver.bodies[1]["alert"]) == RESOLVED


def test_a_failed_post_is_retried_and_a_refused_one_is_not(tmp_path):
    with Receiver(statuses=[500, 503]) as receiver:
        assert notifier(tmp_path, receiver.url).handle(FIRING, T) == POSTED
        assert receiver.received() == [(FIRING.alert_id, "firing")]
    with Receiver(statuses=[404]) as receiver:
        other = replace(FIRING, alert_id="page_drop:/checkout:x", subject="/checkout")
        assert notifier(tmp_path, receiver.url).handle(other, T) == REFUSED
        assert receiver.received() == []


def test_a_post_that_keeps_failing_stops_the_notifier_and_is_not_recorded(tmp_path):
    with Receiver(statuses=[500] * 4) as receiver:
        first = notifier(tmp_path, receiver.url)
        with pytest.raises(Exception, match="500"):
            first.handle(FIRING, T)
        # Nothing recorded: after the restart, the change is posted.
        assert notifier(tmp_path, receiver.url).handle(FIRING, T) == POSTED
        assert receiver.received() == [(FIRING.alert_id, "firing")]


def test_cooldown_suppresses_a_flapping_alert_and_its_resolution(tmp_path):
    with Receiver() as receiver:
        n = notifier(tmp_path, receiver.url, cooldown=300)
        n.handle(FIRING, T)
        n.handle(RESOLVED, T + 40_000)
        # The same page fires again 2 minutes after the first fired: within 5 minutes.
        flap = replace(FIRING, alert_id="page_drop:/cart:flap", first_seen_ms=T + 120_000)
        assert n.handle(flap, T + 120_000) == SUPPRESSED
        assert n.handle(replace(flap, state=R.RESOLVED), T + 150_000) == SUPPRESSED
        # Another page is another subject; and 5 minutes on, /cart is posted again.
        later = replace(FIRING, alert_id="page_drop:/cart:later", first_seen_ms=T + 300_000)
        assert n.handle(later, T + 300_000) == POSTED
    assert receiver.received() == [
        (FIRING.alert_id, "firing"),
        (FIRING.alert_id, "resolved"),
        ("page_drop:/cart:later", "firing"),
    ]


def test_without_a_webhook_changes_are_logged(tmp_path, caplog):
    caplog.set_level("WARNING", logger="app.notifier")
    assert notifier(tmp_path, "").handle(FIRING, T) == LOGGED
    assert caplog.messages == [
        "alert FIRING page_drop - /cart: 0 events in the last window, 30.0 expected"
    ]


def test_stalled_fires_when_batches_stop_while_records_wait_and_resolves_on_the_next(tmp_path):
    with Receiver() as receiver:
        n = notifier(tmp_path, receiver.url, stall_after=60)
        beat = heartbeat_json("q", 7, T)
        beat["sent_at"] = "2025-12-02T08:00:00.000Z"
        n.heartbeat(beat, {"0": 100, "1": 50}, T)
        assert n.check_stall({"0": 900, "1": 50}, T + 59_999) is None  # not yet 60 s
        assert n.check_stall({"0": 100, "1": 50}, T + 90_000) is None  # idle: nothing waits
        assert n.check_stall({"0": 101, "1": 50}, T + 90_000) == POSTED
        # A restart: the ledger has the heartbeat and the alert; nothing is posted twice.
        n = notifier(tmp_path, receiver.url, stall_after=60)
        assert n.check_stall({"0": 500, "1": 50}, T + 95_000) == POSTED
        n.heartbeat(beat, {"0": 500, "1": 50}, T + 96_000)  # the old heartbeat, read again
        assert n.check_stall({"0": 600, "1": 50}, T + 97_000) == POSTED
        # The processor is back: its next heartbeat resolves the stall.
        back = heartbeat_json("q", 8, T + 100_000)
        back["sent_at"] = "2025-12-02T08:01:40.000Z"
        assert n.heartbeat(back, {"0": 600, "1": 50}, T + 100_000) == [POSTED]
    stall_id = "pipeline_stalled:clickstream.events:2025-12-02T08:01:00.000Z"
    assert receiver.received() == [(stall_id, "firing"), (stall_id, "resolved")]
    assert receiver.bodies[0]["alert"]["value"] == 90.0
    assert receiver.bodies[1]["alert"]["value"] == 100.0
    assert receiver.bodies[1]["alert"]["resolved_at"] == "2025-12-02T08:01:40.000Z"


def test_the_webhook_url_is_a_secret(tmp_path):
    from app.settings import SettingsError

    with pytest.raises(SettingsError) as refused:
        make_settings(notify_webhook_url="ftp://hooks.example/services/T0/B0/s3cr3t")
    assert str(refused.value).startswith("NOTIFY_WEBHOOK_URL=(hidden): expected an http(s) URL")
    assert "s3cr3t" not in str(refused.value)


def test_alert_json_round_trips():
    assert alert_from_json(alert_json(RESOLVED)) == RESOLVED
    assert webhook.payload(FIRING)["alert"] == alert_json(FIRING)
