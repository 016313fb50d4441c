"""The traffic model: reproducible, skewed like a real shop, sessions that follow the funnel."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from app.contract import EVENT_TYPES, FIELD_NAMES, UUID_PATTERN, encode
from app.producer import catalog as pages
from app.producer.traffic import (
    BOT_SPEED,
    BOT_USER_AGENTS,
    CRAWLER,
    HUMAN,
    SCRAPER,
    TrafficModel,
)

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def generate(seed: int, n: int, bot_share: float = 0.05) -> list[dict]:
    model = TrafficModel(seed, bot_share)
    return [model.next_event(T0 + timedelta(milliseconds=i)) for i in range(n)]


def test_same_seed_same_events_byte_for_byte():
    assert [encode(e) for e in generate(7, 2000)] == [encode(e) for e in generate(7, 2000)]


def pinned_events(n: int = 2000) -> list[dict]:
    """Seed 42 as the producer runs it, with event times that step through milliseconds."""
    model = TrafficModel(42, 0.05)
    return [model.next_event(T0 + timedelta(microseconds=37_123 * i)) for i in range(n)]


def test_seed_42_gives_the_traffic_it_always_gave():
    # Pinned with the code before the hot path was optimised: an optimisation must not
    # change a single event (a dashboard, a test, a replay all rely on seed 42). Pinned
    # again when bots became crawlers and scrapers, a change of the traffic on purpose.
    fields = ("user_id", "session_id", "page_url", "event_type", "event_time")
    rows = [[e[f] for f in fields] for e in pinned_events()]
    assert hashlib.sha256(json.dumps(rows).encode()).hexdigest() == (
        "af3df7f5772054a3f40197e6192e9aec66d42aef9bcacf78681975af6e6bd27c"
    )


def test_seed_42_gives_the_same_bytes_on_the_wire():
    # Every field, event_id and the JSON encoding included (run_nonce 0).
    wire = b"\n".join(encode(e) for e in pinned_events())
    assert hashlib.sha256(wire).hexdigest() == (
        "6c78d57c21231312e335cfba1291040503a4ff8a199e027739224b4f313e2c6b"
    )


def test_session_picks_are_what_random_choices_draws():
    model = TrafficModel(13, bot_share=0.3)
    weight_changes, last = 0, None
    for _ in range(5000):
        weights = [BOT_SPEED if s.visitor.is_bot else 1 for s in model.sessions]
        assert model._cumulative_weights == list(itertools.accumulate(weights))
        weight_changes += weights != last
        last = weights
        state = model.rng.getstate()
        picked = model._pick_session()
        model.rng.setstate(state)
        assert picked == model.rng.choices(range(len(weights)), weights=weights)[0]
        model.next_event(T0)
    # Sessions were replaced by ones of the other kind, so the kept weights were redone.
    assert weight_changes > 50


def test_identifiers_are_what_uuid_version_4_formats():
    nonce = 0xF0F0_1234_5678_9ABC_DEF0_0FED_CBA9_8765
    model = TrafficModel(3, run_nonce=nonce)
    twin = random.Random()
    for _ in range(2000):
        twin.setstate(model.rng.getstate())
        expected = str(uuid.UUID(int=twin.getrandbits(128) ^ nonce, version=4))
        assert model._uuid() == expected


def test_a_nonce_wider_than_a_uuid_is_refused():
    with pytest.raises(ValueError, match="run_nonce must fit in 128 bits"):
        TrafficModel(3, run_nonce=1 << 128)


def test_another_seed_other_events():
    first, second = generate(7, 200), generate(8, 200)
    assert not {e["event_id"] for e in first} & {e["event_id"] for e in second}


def test_events_follow_the_contract():
    for event in generate(1, 3000):
        assert tuple(event) == FIELD_NAMES
        assert re.match(UUID_PATTERN, event["event_id"])
        assert event["schema_version"] == 1
        assert event["event_type"] in EVENT_TYPES
        assert event["page_url"].startswith("/")
        assert event["user_id"] and event["session_id"]
        assert json.loads(encode(event))["event_time"].endswith("Z")


def test_catalog_is_fixed_and_sized_like_a_shop():
    catalog, again = pages.build_catalog(42), pages.build_catalog(42)
    assert (catalog.categories, catalog.products) == (again.categories, again.products)
    assert len(catalog.products) == 300
    assert len(catalog.categories) == 12
    assert len(set(catalog.all_pages)) == 8 + 12 + 300


def test_product_popularity_is_skewed_not_uniform():
    model = TrafficModel(3, bot_share=0.0)
    events = [model.next_event(T0) for _ in range(60_000)]
    views = Counter(e["page_url"] for e in events if e["page_url"].startswith("/products/"))
    ranked = [count for _, count in views.most_common()]
    top_decile = sum(ranked[:30]) / sum(ranked)
    # Uniform traffic would give the 30 busiest of 300 products about 10% of views.
    assert top_decile > 0.45
    # The most popular product sits at Zipf rank 1, model.catalog.products[0].
    assert views.most_common(1)[0][0] == model.catalog.products[0]


def sessions_of(events: list[dict]) -> dict[str, list[dict]]:
    by_session = defaultdict(list)
    for e in events:
        by_session[e["session_id"]].append(e)
    return by_session


def test_human_sessions_walk_the_funnel_in_order():
    sessions = sessions_of(generate(11, 40_000, bot_share=0.0))
    reached = Counter()
    for events in sessions.values():
        seen_cart = seen_checkout = False
        for e in events:
            page, kind = e["page_url"], e["event_type"]
            if kind == "add_to_cart":
                assert page.startswith("/products/")
            if page == pages.CART:
                seen_cart = True
            if page == pages.CHECKOUT:
                assert seen_cart, "checkout without a cart first"
                assert kind == "checkout"
                seen_checkout = True
            if kind == "purchase":
                assert seen_checkout and page == pages.CONFIRMATION
        kinds = {e["event_type"] for e in events}
        pages_seen = {e["page_url"] for e in events}
        reached["product"] += any(p.startswith("/products/") for p in pages_seen)
        reached["cart"] += "add_to_cart" in kinds
        reached["checkout"] += "checkout" in kinds
        reached["purchase"] += "purchase" in kinds
    # Each step of the funnel loses visitors.
    assert reached["product"] > reached["cart"] > reached["checkout"] > reached["purchase"] > 0


def test_bots_are_a_share_of_sessions_labelled_and_click_fast():
    model = TrafficModel(5, 0.10, record_labels=True)
    events = [model.next_event(T0 + timedelta(milliseconds=i)) for i in range(60_000)]
    sessions = sessions_of(events)
    labels = model.labels
    assert set(sessions) <= set(labels) and set(labels.values()) == {HUMAN, CRAWLER, SCRAPER}
    crawlers = [s for sid, s in sessions.items() if labels[sid] == CRAWLER]
    scrapers = [s for sid, s in sessions.items() if labels[sid] == SCRAPER]
    humans = [s for sid, s in sessions.items() if labels[sid] == HUMAN]
    # Sessions still open at the end are cut short, hence the tolerance.
    assert 0.05 < (len(crawlers) + len(scrapers)) / len(sessions) < 0.15
    assert 0.3 < len(crawlers) / (len(crawlers) + len(scrapers)) < 0.7
    mean_human = sum(map(len, humans)) / len(humans)
    for bots in (crawlers, scrapers):
        assert sum(map(len, bots)) / len(bots) > 5 * mean_human
        assert all(e["event_type"] == "page_view" for s in bots for e in s)
    # Crawlers say what they are; scrapers look like browsers and only read products.
    assert all(e["user_agent"] in BOT_USER_AGENTS for s in crawlers for e in s)
    assert all(e["user_id"].startswith("bot-") for s in crawlers for e in s)
    assert not any(e["user_agent"] in BOT_USER_AGENTS for s in scrapers + humans for e in s)
    assert all(e["page_url"].startswith("/products/") for s in scrapers for e in s)


def test_the_same_seed_labels_the_same_sessions_the_same_way():
    def labelled(seed: int) -> list[tuple[str, str]]:
        model = TrafficModel(seed, 0.2, record_labels=True)
        for i in range(5000):
            model.next_event(T0 + timedelta(milliseconds=i))
        return list(model.labels.items())

    first = labelled(11)
    assert first == labelled(11)
    assert first != labelled(12)
    assert TrafficModel(11, 0.2).labels is None  # kept only when asked: it grows


def test_no_bots_when_share_is_zero():
    assert not any(e["user_agent"] in BOT_USER_AGENTS for e in generate(5, 5000, bot_share=0))


def test_faker_is_only_used_at_start_up(monkeypatch):
    from faker import Faker

    model = TrafficModel(21)

    def forbidden(*args, **kwargs):
        raise AssertionError("Faker called on the hot path")

    monkeypatch.setattr(Faker, "__getattr__", forbidden, raising=False)
    monkeypatch.setattr(Faker, "__init__", forbidden)
    events = [model.next_event(T0) for _ in range(20_000)]
    assert len({e["session_id"] for e in events}) > 100


def test_a_restart_with_the_same_seed_sends_new_event_ids():
    first = TrafficModel(7, run_nonce=1)
    again = TrafficModel(7, run_nonce=2)
    a = [first.next_event(T0) for _ in range(500)]
    b = [again.next_event(T0) for _ in range(500)]
    assert not {e["event_id"] for e in a} & {e["event_id"] for e in b}
    assert [e["page_url"] for e in a] == [e["page_url"] for e in b]  # the same traffic
    assert all(re.match(UUID_PATTERN, e["event_id"]) for e in a + b)
