"""The data volume's sizing formula (app/sizing.py), worked by hand, and the README's table.

The bytes per event themselves are measured on the real engines by
tests/integration/test_sizing.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app import sizing

README = Path(__file__).resolve().parents[2] / "README.md"


def test_a_week_of_kafka_at_200_events_per_second():
    # 200 x 604,800 s = 120,960,000 events x 347 B = 41,973,120,000 B = 39.09 GiB.
    assert sizing.kafka_gib(200, 7, 42) == pytest.approx(41_973_120_000 / 2**30)
    assert sizing.kafka_days(200, 7, 42) == 7  # the cap is not reached


def test_above_the_sizing_the_cap_keeps_fewer_days_instead_of_more_disk():
    # 500 x 86,400 x 347 B = 14,990,400,000 B a day; 42 GiB = 45,097,156,608 B.
    assert sizing.kafka_gib(500, 7, 42) == 42
    assert sizing.kafka_days(500, 7, 42) == pytest.approx(45_097_156_608 / 14_990_400_000)


def test_the_data_volume_is_kafka_events_allowance_and_headroom():
    # events: 200 x 90 x 86,400 x 97 B = 150,854,400,000 B = 140.49 GiB.
    events = 150_854_400_000 / 2**30
    assert sizing.events_gib(200, 90) == pytest.approx(events)
    kafka = 41_973_120_000 / 2**30
    assert sizing.data_volume_gib(200, 7, 42, 90) == pytest.approx((kafka + events + 30) * 1.2)


def test_the_readmes_sizing_table_is_the_modules_output():
    assert sizing.table() in README.read_text(), "stale: paste `python -m app.sizing`"
