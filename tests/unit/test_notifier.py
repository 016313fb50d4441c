"""The notifier against a real HTTP receiver on the loopback: each change posted once.

Kafka is left out here (tests/integration/test_alerts.py runs the whole thing); these
tests call what the notifier's loop calls for each message.
"""

from __future__ import annotations

import json
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


def notifier(
    tmp_path, url: str, cooldown: float = 300, stall_after: float = 60, published=None
) -> Notifier:
    options = NotifierOptions(
        webhook_url=url,
        cooldown_seconds=cooldown,
        retries=3,
        stall_after_seconds=stall_after,
        events_topic="clickstream.events",
        backoff_seconds=0.01,
    )
    publish = None if published is None else (lambda a: published.append((a.alert_id, a.state)))
    return Notifier(options, Ledger(str(tmp_path / "notifier.sqlite")), publish=publish)


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


def test_stalled_fires_when_records_wait_with_no_batch_and_resolves_on_the_next(tmp_path):
    published: list[tuple[str, str]] = []  # for the alerts table, through the topic
    with Receiver() as receiver:
        n = notifier(tmp_path, receiver.url, stall_after=60, published=published)
        beat = heartbeat_json("q", 7, T)
        beat["sent_at"] = "2025-12-02T08:00:00.000Z"
        n.heartbeat(beat, {"0": 100, "1": 50}, T)
        assert n.check_stall({"0": 100, "1": 50}, T + 59_999) is None  # idle: nothing waits
        assert n.check_stall({"0": 101, "1": 50}, T + 60_000) is None  # waits since now
        assert n.check_stall({"0": 900, "1": 50}, T + 119_999) is None  # not yet 60 s
        assert n.check_stall({"0": 901, "1": 50}, T + 120_000) == POSTED
        # A restart: the ledger has when records began to wait, and the alert; nothing
        # is posted (or published) twice.
        n = notifier(tmp_path, receiver.url, stall_after=60, published=published)
        assert n.check_stall({"0": 950, "1": 50}, T + 125_000) == POSTED
        n.heartbeat(beat, {"0": 950, "1": 50}, T + 126_000)  # the old heartbeat, read again
        assert n.check_stall({"0": 960, "1": 50}, T + 127_000) == POSTED
        # The processor is back: its next heartbeat resolves the stall.
        back = heartbeat_json("q", 8, T + 130_000)
        back["sent_at"] = "2025-12-02T08:02:10.000Z"
        assert n.heartbeat(back, {"0": 960, "1": 50}, T + 130_000) == [POSTED]
    stall_id = "pipeline_stalled:clickstream.events:2025-12-02T08:02:00.000Z"
    assert receiver.received() == [(stall_id, "firing"), (stall_id, "resolved")]
    assert published == [(stall_id, "firing"), (stall_id, "resolved")]
    assert receiver.bodies[0]["alert"]["value"] == 60.0
    assert receiver.bodies[1]["alert"]["value"] == 70.0
    assert receiver.bodies[1]["alert"]["resolved_at"] == "2025-12-02T08:02:10.000Z"


def test_records_after_an_idle_spell_are_not_a_stall_until_they_have_waited(tmp_path):
    # The producer paused for two minutes (nothing to read: no batch, rightly), then sent
    # again. The processor's next batch is a trigger away: no stall yet.
    with Receiver() as receiver:
        n = notifier(tmp_path, receiver.url, stall_after=60)
        beat = heartbeat_json("q", 7, T)
        beat["sent_at"] = "2025-12-02T08:00:00.000Z"
        n.heartbeat(beat, {"0": 100}, T)
        assert n.check_stall({"0": 100}, T + 120_000) is None  # idle
        assert n.check_stall({"0": 101}, T + 121_000) is None  # a record waits, 0 s
        assert n.check_stall({"0": 150}, T + 180_999) is None  # 59.999 s
        assert n.check_stall({"0": 200}, T + 181_000) == POSTED  # 60 s
    # first_seen: when the first record had waited 60 s (seen waiting at T + 121 s).
    assert receiver.received() == [
        ("pipeline_stalled:clickstream.events:2025-12-02T08:03:01.000Z", "firing")
    ]


def test_the_webhook_url_is_a_secret(tmp_path):
    from app.settings import SettingsError

    with pytest.raises(SettingsError) as refused:
        make_settings(notify_webhook_url="ftp://hooks.example/services/T0/B0/s3cr3t")
    assert str(refused.value).startswith("NOTIFY_WEBHOOK_URL=(hidden): expected an http(s) URL")
    assert "s3cr3t" not in str(refused.value)


def test_alert_json_round_trips():
    assert alert_from_json(alert_json(RESOLVED)) == RESOLVED
    assert webhook.payload(FIRING)["alert"] == alert_json(FIRING)


def test_a_stall_is_published_before_it_is_posted_and_again_after_a_crash_between(tmp_path):
    """Published first: a crash after publishing and before the ledger publishes again
    (the table drops the repeat by its token); the other order could lose the row."""
    published: list[tuple[str, str]] = []

    def refuse(*args) -> None:
        raise RuntimeError("killed between publishing and posting")

    options = NotifierOptions("http://127.0.0.1:9/hook", 300, 0, 60, "clickstream.events")
    ledger_path = str(tmp_path / "notifier.sqlite")
    crashing = Notifier(
        options,
        Ledger(ledger_path),
        post=refuse,
        publish=lambda a: published.append((a.alert_id, a.state)),
    )
    beat = heartbeat_json("q", 7, T)
    beat["sent_at"] = "2025-12-02T08:00:00.000Z"
    crashing.heartbeat(beat, {"0": 100}, T)
    assert crashing.check_stall({"0": 101}, T + 1_000) is None
    with pytest.raises(RuntimeError):
        crashing.check_stall({"0": 101}, T + 61_000)
    stall = ("pipeline_stalled:clickstream.events:2025-12-02T08:01:01.000Z", "firing")
    assert published == [stall]
    with Receiver() as receiver:
        n = notifier(tmp_path, receiver.url, stall_after=60, published=published)
        assert n.check_stall({"0": 102}, T + 62_000) == POSTED
        assert n.check_stall({"0": 103}, T + 63_000) == POSTED  # from the ledger: no repeat
    assert published == [stall, stall]
    assert receiver.received() == [stall]


def test_messages_that_are_not_ours_are_skipped_not_fatal(caplog):
    """The notifier's loop reads every message through these: a poison message must not
    stop every notification after it (its offset would never be committed)."""
    from app.alerts.topic import alert_in, heartbeat_in, parse

    caplog.set_level("WARNING", logger="app.alerts.topic")
    assert [parse(v) for v in (b"\xff not json", b"[1]", b"null", None)] == [None] * 4
    assert alert_in({"kind": "alert", "alert_id": "x"}) is None  # the other fields missing
    assert alert_in({**alert_json(FIRING), "first_seen": "yesterday"}) is None
    assert heartbeat_in({"kind": "heartbeat"}) is None
    assert heartbeat_in({"kind": "heartbeat", "sent_at": 7}) is None
    assert len(caplog.records) == 8
    # What is ours still reads.
    assert alert_in(parse(json.dumps({"kind": "alert", **alert_json(FIRING)}).encode())) == FIRING
    beat = heartbeat_json("q", 7, T)
    assert heartbeat_in(beat) == beat
