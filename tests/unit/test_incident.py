"""The staged incident: one page's traffic held back to a share, for a while, reproducibly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.producer.incident import Incident, IncidentFilter
from app.producer.traffic import TrafficModel
from app.settings import SettingsError, load

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def run(incident: Incident, seed: int = 3, n: int = 20_000) -> tuple[list[dict], list[dict]]:
    """(generated, sent) for n events, one every 10 ms of elapsed time."""
    model, gate = TrafficModel(seed, 0.0), IncidentFilter(incident, seed)
    generated, sent = [], []
    for i in range(n):
        event = model.next_event(T0 + timedelta(milliseconds=10 * i))
        generated.append(event)
        if gate.keeps(event, i / 100):
            sent.append(event)
    assert gate.suppressed == len(generated) - len(sent)
    return generated, sent


def during(events: list[dict], start: float, end: float) -> list[dict]:
    return [
        e
        for e in events
        if start <= (datetime.fromisoformat(e["event_time"]) - T0).total_seconds() < end
    ]


def test_an_outage_silences_the_page_for_its_duration_and_nothing_else():
    generated, sent = run(Incident("/cart", 0.0, 60, 50))
    cart_before = [e for e in during(generated, 60, 110) if e["page_url"] == "/cart"]
    assert len(cart_before) > 100  # there was traffic to lose
    assert [e for e in during(sent, 60, 110) if e["page_url"] == "/cart"] == []
    # Everything else, and /cart outside the incident, is sent as generated.
    kept = [e for e in generated if e["page_url"] != "/cart" or not 60 <= _at(e) < 110]
    assert sent == kept


def test_a_partial_drop_keeps_about_its_share_and_the_same_seed_keeps_the_same_events():
    incident = Incident("/cart", 0.2, 0, 200)
    generated, sent = run(incident)
    cart = [e for e in generated if e["page_url"] == "/cart"]
    kept = [e for e in sent if e["page_url"] == "/cart"]
    assert len(cart) > 1000
    assert len(kept) / len(cart) == pytest.approx(0.2, abs=0.04)
    assert run(incident)[1] == sent


def test_no_incident_sends_everything():
    generated, sent = run(Incident("", 0.0, 0, 1000), n=2000)
    assert sent == generated


def test_incident_settings_are_checked():
    settings = load(environ={"INCIDENT_PAGE": "/cart", "INCIDENT_TRAFFIC_SHARE": "0.2"})
    assert Incident.from_settings(settings) == Incident("/cart", 0.2, 60, 60)
    assert load(environ={}).incident_page == ""
    with pytest.raises(SettingsError, match=r"^INCIDENT_PAGE='cart': expected a page path"):
        load(environ={"INCIDENT_PAGE": "cart"})
    with pytest.raises(SettingsError, match=r"^INCIDENT_TRAFFIC_SHARE='1.5'"):
        load(environ={"INCIDENT_TRAFFIC_SHARE": "1.5"})


def _at(event: dict) -> float:
    return (datetime.fromisoformat(event["event_time"]) - T0).total_seconds()
