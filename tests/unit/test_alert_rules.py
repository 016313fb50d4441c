"""The alert rules, worked out by hand (app/alerts/rules.py)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from app.alerts import rules as R
from tests.conftest import make_settings

RULES = R.rules_from(make_settings())  # the defaults: 10 s window, 5 min baseline
DEFAULTS = R.AlertRules(
    pages=("/cart", "/checkout"),
    window_seconds=10,
    baseline_seconds=300,
    settle_seconds=2,
    min_expected=20,
    drop_share=0.3,
    p_value=0.0001,
    recover_share=0.6,
    reject_share=0.1,
    reject_min_records=100,
    max_lag=1_000_000,
    max_freshness_seconds=60,
)


def test_the_defaults_are_the_documented_ones():
    assert RULES == DEFAULTS


def test_poisson_lower_tail():
    assert R.poisson_cdf(0, 20) == pytest.approx(math.exp(-20), rel=1e-12)
    by_hand = sum(math.exp(-20) * 20**i / math.factorial(i) for i in range(6))
    assert R.poisson_cdf(5, 20) == pytest.approx(by_hand, rel=1e-12)  # 7.19e-5
    assert R.poisson_cdf(5, 0) == 1.0
    assert R.poisson_cdf(-1, 3) == 0.0
    # A big mean neither overflows nor underflows: the median of Poisson(10^6) is 10^6.
    assert R.poisson_cdf(1_000_000, 1_000_000.0) == pytest.approx(0.5, abs=0.001)


def test_page_drop_fires_on_a_significant_and_large_drop_only():
    # 600 events over the 300 s baseline: 20 expected in a 10 s window.
    silent = R.page_drop("/cart", 0, 600, RULES, None)
    assert silent == R.Reading(R.PAGE_DROP, "/cart", 0, 20.0, 6.0, True)
    # 5 of 20: P(X <= 5) = 7.2e-5 <= 1e-4, and 5 <= 30% of 20.
    assert R.page_drop("/cart", 5, 600, RULES, None).firing is True
    # 6 of 20 is 30%, but P(X <= 6) = 2.5e-4: not unlikely enough.
    assert R.page_drop("/cart", 6, 600, RULES, None).firing is False
    # 35 of 100 is very unlikely (p ~ 1e-13) but a dip to 35%: real traffic dips that far.
    assert R.page_drop("/cart", 35, 3000, RULES, None).firing is False
    assert R.page_drop("/cart", 30, 3000, RULES, None).firing is True


def test_a_page_too_quiet_to_judge_is_not_judged():
    # 570 events over 300 s: 19 expected, below ALERT_MIN_EXPECTED = 20; even a zero says nothing.
    reading = R.page_drop("/checkout", 0, 570, RULES, None)
    assert reading.firing is None
    assert reading.baseline == 19.0


def test_an_open_page_drop_keeps_its_frozen_baseline_until_traffic_returns():
    opened = R.Alert("id", R.PAGE_DROP, "/cart", R.FIRING, 0, 20.0, 6.0, 1000, 1000, None)
    # The baseline stretch now holds the outage (60 events over 300 s: 2 expected); the
    # frozen 20 is what counts, and 60% of it (12) resolves.
    assert R.page_drop("/cart", 11, 60, RULES, opened) == R.Reading(
        R.PAGE_DROP, "/cart", 11, 20.0, 12.0, True
    )
    assert R.page_drop("/cart", 12, 60, RULES, opened).firing is False


def test_rejects_flood_is_a_share_of_the_minute_with_enough_records():
    assert R.rejects_flood(99, 99, RULES).firing is None
    assert R.rejects_flood(1000, 101, RULES) == R.Reading(
        R.REJECTS_FLOOD, "all", 0.101, 0.0, 0.1, True
    )
    assert R.rejects_flood(1000, 100, RULES).firing is False


def test_pipeline_behind_on_lag_or_freshness():
    lag, freshness = R.pipeline_behind(1_000_001, 60.0, RULES)
    assert (lag.subject, lag.firing, freshness.subject, freshness.firing) == (
        R.KAFKA_LAG,
        True,
        R.FRESHNESS,
        False,
    )
    assert [r.firing for r in R.pipeline_behind(5, 60.5, RULES)] == [False, True]


def test_advance_opens_refreshes_and_resolves():
    at = 1_764_662_400_000  # 2025-12-02T08:00:00Z
    fire = R.Reading(R.PAGE_DROP, "/cart", 0, 20.0, 10.0, True)
    rows, changes = R.advance([fire], {}, at)
    opened = rows[0]
    assert changes == rows
    assert opened.alert_id == "page_drop:/cart:2025-12-02T08:00:00.000Z"
    assert (opened.state, opened.first_seen_ms, opened.last_seen_ms) == (R.FIRING, at, at)

    still = replace(fire, value=3, threshold=16.0)
    rows, changes = R.advance([still], {("page_drop", "/cart"): opened}, at + 1000)
    assert changes == []
    assert rows == [replace(opened, value=3.0, last_seen_ms=at + 1000)]

    unjudged = replace(fire, firing=None)
    assert R.advance([unjudged], {("page_drop", "/cart"): opened}, at + 2000) == ([], [])

    back = replace(fire, value=18, firing=False)
    rows, changes = R.advance([back], {("page_drop", "/cart"): opened}, at + 3000)
    resolved = replace(
        opened, state=R.RESOLVED, value=18.0, last_seen_ms=at + 3000, resolved_ms=at + 3000
    )
    assert rows == changes == [resolved]
    assert resolved.message == (
        "RESOLVED page_drop - /cart: 18 events in the last window, 20.0 expected"
    )
    quiet = replace(fire, firing=False)
    assert R.advance([quiet], {}, at) == ([], [])


def test_recover_share_must_be_above_drop_share():
    from app.settings import SettingsError

    with pytest.raises(SettingsError, match=r"ALERT_RECOVER_SHARE=0\.3: must be above"):
        make_settings(alert_recover_share=0.3)
