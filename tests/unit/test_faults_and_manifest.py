"""Fault injection and the producer's manifest (its ground truth)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from app.contract import encode, parse_event_time
from app.producer import faults
from app.producer.faults import FaultInjector, FaultRates
from app.producer.manifest import Manifest, window_start
from app.producer.traffic import TrafficModel

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def run(rates: FaultRates, n: int = 10_000, seed: int = 9):
    model, injector = TrafficModel(seed), FaultInjector(rates, seed)
    events, messages = [], []
    for i in range(n):
        event = model.next_event(T0 + timedelta(milliseconds=10 * i))
        events.append(event)
        messages += injector.apply(event)
    return events, messages + injector.pending()


def test_seed_42_with_every_fault_sends_the_messages_it_always_sent():
    # Kinds, keys and bytes, in order: pinned before the hot path was optimised, and again
    # when bots became two kinds (crawlers and scrapers: one more draw per bot session).
    model = TrafficModel(42, 0.05)
    injector = FaultInjector(FaultRates(0.04, 0.03, 0.03, 0.05, 0.05, 600.0), 42)
    messages = []
    for i in range(2000):
        messages += injector.apply(model.next_event(T0 + timedelta(microseconds=37_123 * i)))
    messages += injector.pending()
    digest = hashlib.sha256()
    for m in messages:
        digest.update(m.kind.encode() + b"\0" + (m.key or b"") + b"\0" + m.value + b"\n")
    assert len(messages) == 2113
    assert digest.hexdigest() == (
        "ca57369a71f553553b981fc4dfa58976f46114d8b81fa91ac262c1782c203fa4"
    )


def test_no_faults_sends_each_event_once_as_is():
    events, messages = run(FaultRates(), n=500)
    assert [m.value for m in messages] == [encode(e) for e in events]
    assert {m.kind for m in messages} == {faults.VALID}
    assert messages[0].key == events[0]["user_id"].encode()


def test_each_fault_at_its_rate_and_in_its_shape():
    rates = FaultRates(
        malformed=0.02,
        null_user=0.01,
        null_page=0.01,
        late=0.03,
        duplicate=0.05,
        late_delay_seconds=600,
    )
    events, messages = run(rates)
    kinds = Counter(m.kind for m in messages)
    # 10,000 draws: each share within a few standard deviations of its rate.
    assert kinds[faults.MALFORMED_JSON] == pytest.approx(200, abs=50)
    assert kinds[faults.NULL_USER] == pytest.approx(100, abs=35)
    assert kinds[faults.NULL_PAGE] == pytest.approx(100, abs=35)
    assert kinds[faults.LATE] == pytest.approx(300, abs=60)
    assert kinds[faults.DUPLICATE] == pytest.approx(500, abs=80)
    by_id = {e["event_id"]: e for e in events}
    for m in messages:
        if m.kind == faults.MALFORMED_JSON:
            with pytest.raises(json.JSONDecodeError):
                json.loads(m.value)
        elif m.kind == faults.NULL_USER:
            assert json.loads(m.value)["user_id"] is None and m.key is None
        elif m.kind == faults.NULL_PAGE:
            assert json.loads(m.value)["page_url"] is None
        elif m.kind == faults.LATE:
            original = by_id[m.event["event_id"]]
            shift = parse_event_time(original["event_time"]) - parse_event_time(
                json.loads(m.value)["event_time"]
            )
            assert shift == timedelta(seconds=600)
        elif m.kind == faults.DUPLICATE:
            assert m.value == encode(by_id[m.event["event_id"]])


def test_duplicates_are_resent_within_twenty_events_of_their_original():
    model, injector = TrafficModel(9), FaultInjector(FaultRates(duplicate=0.1), 9)
    sent_at = {}
    for step in range(2000):
        for m in injector.apply(model.next_event(T0)):
            if m.kind == faults.DUPLICATE:
                assert 1 <= step - sent_at[m.event["event_id"]] <= 20
            else:
                sent_at[m.event["event_id"]] = step
    assert len(injector.pending()) <= 20


def test_fault_rates_do_not_change_the_underlying_traffic():
    clean, _ = run(FaultRates(), n=1000)
    faulty, _ = run(FaultRates(malformed=0.2, duplicate=0.2), n=1000)
    assert [e["event_id"] for e in clean] == [e["event_id"] for e in faulty]


def test_window_start_floors_to_the_window():
    assert window_start("2026-11-29T12:00:59.999Z", 60) == "2026-11-29T12:00:00Z"
    assert window_start("2026-11-29T12:01:00.000Z", 60) == "2026-11-29T12:01:00Z"
    assert window_start("2026-11-29T12:07:30.000Z", 300) == "2026-11-29T12:05:00Z"


def test_manifest_counts_valid_unique_on_time_events_only():
    rates = FaultRates(malformed=0.02, null_user=0.01, null_page=0.01, late=0.03, duplicate=0.05)
    events, messages = run(rates, n=3000)
    manifest = Manifest(60)
    for m in messages:
        manifest.acknowledged(m)
    # Ground truth computed independently from the message list.
    kinds_by_id = {m.event["event_id"]: m.kind for m in messages if m.kind != faults.DUPLICATE}
    expected = Counter()
    for e in events:
        if kinds_by_id[e["event_id"]] == faults.VALID:
            expected[(window_start(e["event_time"], 60), e["page_url"])] += 1
    got = manifest.to_dict()
    flat = Counter({(w, p): n for w, pages in got["counts"].items() for p, n in pages.items()})
    assert flat == expected
    assert got["counted_events"] == sum(expected.values())
    kinds = Counter(m.kind for m in messages)
    assert got["rejected"] == {
        "malformed_json": kinds[faults.MALFORMED_JSON],
        "missing_page_url": kinds[faults.NULL_PAGE],
        "missing_user_id": kinds[faults.NULL_USER],
    }
    assert sum(sum(p.values()) for p in got["late"].values()) == kinds[faults.LATE]
    assert got["duplicates_sent"] == kinds[faults.DUPLICATE]


def test_a_duplicate_counts_when_its_original_was_never_acknowledged():
    _, messages = run(FaultRates(duplicate=1.0), n=50)
    manifest = Manifest(60)
    originals_skipped = 0
    for m in messages:
        if m.kind == faults.VALID and originals_skipped < 5:
            originals_skipped += 1  # as if the broker never acknowledged it
            continue
        manifest.acknowledged(m)
    assert manifest.to_dict()["counted_events"] == 50


def test_manifest_file_is_written_atomically(tmp_path):
    manifest = Manifest(60)
    _, messages = run(FaultRates(), n=10)
    for m in messages:
        manifest.acknowledged(m)
    target = tmp_path / "out" / "manifest.json"
    manifest.write(str(target))
    assert json.loads(target.read_text())["counted_events"] == 10
    assert not list(target.parent.glob("*.tmp"))


def test_manifest_insights_by_hand():
    def message(n, second, user, session, page, kind="page_view"):
        event = {
            "event_id": f"id-{n}",
            "event_time": f"2026-11-29T12:0{second // 60}:{second % 60:02d}.000Z",
            "user_id": user,
            "session_id": session,
            "page_url": page,
            "event_type": kind,
        }
        return faults.Message(user.encode(), b"{}", faults.VALID, event)

    manifest = Manifest(60, labels={"s1": "human", "s2": "scraper"})
    for m in [
        message(1, 5, "ann", "s1", "/"),
        message(2, 10, "ann", "s1", "/products/1"),
        message(3, 11, "ann", "s1", "/products/1", "add_to_cart"),
        message(4, 20, "bob", "s2", "/products/2"),
        message(5, 70, "ann", "s1", "/products/1"),
        message(6, 70, "ann", "s1", "/help", "click"),
        message(7, 80, "cid", None, "/"),
    ]:
        manifest.acknowledged(m)
    got = manifest.to_dict()
    assert got["insights"] == {
        "2026-11-29T12:00:00Z": {
            "unique_users": 2,
            "sessions_started": 2,
            "bot_sessions_started": 1,
            "funnel": [2, 2, 2, 1, 0, 0],
        },
        "2026-11-29T12:01:00Z": {
            "unique_users": 2,
            "sessions_started": 0,
            "bot_sessions_started": 0,
            "funnel": [1, 1, 1, 0, 0, 0],
        },
    }
    assert got["sessions"]["s1"] == {
        "user_id": "ann",
        "label": "human",
        "start": "2026-11-29T12:00:05.000Z",
        "end": "2026-11-29T12:01:10.000Z",
        "events": 5,
        "page_views": 3,
        "max_views_of_one_page": 2,
        "deepest_step": 4,
        "entry_page": "/",
        # The last event sent among those of the latest time: the click on /help.
        "exit_page": "/help",
    }
    assert got["sessions"]["s2"]["label"] == "scraper" and got["incident"] is None
