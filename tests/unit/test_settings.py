"""The settings contract: defaults, precedence, validation messages, and the README table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app import settings as settings_module
from app.settings import SETTINGS, SettingsError, load

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_are_the_documented_ones():
    s = load(environ={})
    assert s.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert s.kafka_topic == "clickstream.events"
    assert s.clickhouse_url == "chdb://.data/clickhouse"
    assert s.window_duration == 60
    assert s.watermark_delay == 120
    assert s.trigger_interval == 5
    assert s.max_offsets_per_trigger == 100000
    assert s.shuffle_partitions == 2
    assert s.producer_rate == 200.0
    assert s.fault_late_delay == 600


def test_environment_overrides_default_and_flag_overrides_environment():
    env = {"WATERMARK_DELAY": "90s", "PRODUCER_RATE": "50"}
    assert load(environ=env).watermark_delay == 90
    s = load(environ=env, overrides={"WATERMARK_DELAY": "3m"})
    assert (s.watermark_delay, s.producer_rate) == (180, 50.0)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("2m", 120), ("1h", 3600), ("500ms", 0.5), (" 5 s ", 5)],
)
def test_durations(text, seconds):
    assert settings_module.parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PRODUCER_RATE", "-5", "PRODUCER_RATE='-5': expected a number above 0"),
        ("PRODUCER_RATE", "fast", "PRODUCER_RATE='fast': expected a number above 0"),
        ("PRODUCER_SEED", "x1", "PRODUCER_SEED='x1': expected an integer"),
        ("WINDOW_DURATION", "a minute", "WINDOW_DURATION='a minute': expected a duration"),
        ("WINDOW_DURATION", "0s", "WINDOW_DURATION='0s': expected a duration above 0"),
        ("KAFKA_PARTITIONS", "0", "KAFKA_PARTITIONS='0': expected an integer of at least 1"),
        ("FAULT_LATE_RATE", "1.5", "FAULT_LATE_RATE='1.5': expected a fraction between 0 and 1"),
        ("STARTING_OFFSETS", "middle", "STARTING_OFFSETS='middle': expected one of earliest"),
        ("CLICKHOUSE_URL", "ftp://x", "CLICKHOUSE_URL='ftp://x': expected chdb://PATH or"),
        ("CLICKHOUSE_URL", "chdb://", "CLICKHOUSE_URL='chdb://': chdb:// needs a folder"),
        ("KAFKA_TOPIC", "  ", "KAFKA_TOPIC='  ': must not be empty"),
    ],
)
def test_a_bad_value_is_refused_with_a_message_naming_the_setting(name, value, message):
    with pytest.raises(SettingsError) as error:
        load(environ={name: value})
    assert str(error.value).startswith(message)


def test_fault_rates_may_not_add_up_to_more_than_everything():
    env = {"FAULT_MALFORMED_RATE": "0.6", "FAULT_LATE_RATE": "0.5"}
    with pytest.raises(SettingsError, match=r"FAULT_\*_RATE settings add up to 1.1"):
        load(environ=env)


def test_windows_are_whole_seconds():
    with pytest.raises(SettingsError, match=r"WINDOW_DURATION=1\.5s: use whole seconds"):
        load(environ={"WINDOW_DURATION": "1500ms"})


def test_cli_stops_with_exit_2_and_names_the_setting(capsys, monkeypatch):
    monkeypatch.delenv("PRODUCER_RATE", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        settings_module.from_cli("x", ["producer"], ["--producer-rate", "0"], prog="producer")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "producer: setting error: PRODUCER_RATE='0': expected a number above 0\n"
    )


def test_cli_flags_only_for_the_groups_asked():
    settings, _ = settings_module.from_cli("x", ["processor"], ["--watermark-delay", "30s"])
    assert settings.watermark_delay == 30
    with pytest.raises(SystemExit):
        settings_module.from_cli("x", ["processor"], ["--producer-rate", "5"])


def test_to_environ_round_trips():
    original = load(environ={"TRIGGER_INTERVAL": "500ms", "PRODUCER_RATE": "12.5"})
    assert load(environ=settings_module.to_environ(original)) == original


def test_every_setting_is_in_the_readme_table_with_its_default():
    readme = README.read_text()
    table = settings_module.markdown_table()
    assert table in readme, "README settings table is stale: paste settings.markdown_table()"
    documented = re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.MULTILINE)
    assert documented == [s.env for s in SETTINGS]
