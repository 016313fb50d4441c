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
    assert s.max_event_age == 89 * 86400
    assert (s.max_page_url_length, s.reject_sample_bytes) == (2048, 1024)
    assert (s.sink_retries, s.sink_retry_backoff) == (5, 1)
    assert s.producer_client == "kafka-python"


def test_environment_overrides_default_and_flag_overrides_environment():
    env = {"WATERMARK_DELAY": "90s", "PRODUCER_RATE": "50"}
    assert load(environ=env).watermark_delay == 90
    s = load(environ=env, overrides={"WATERMARK_DELAY": "3m"})
    assert (s.watermark_delay, s.producer_rate) == (180, 50.0)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("2m", 120),
        ("1h", 3600),
        ("7d", 604800),
        ("500ms", 0.5),
        (" 5 s ", 5),
    ],
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
        ("MAX_EVENT_AGE", "90d", "MAX_EVENT_AGE=90d: at most 89d, a day inside the 90-day TTL"),
        ("SINK_RETRIES", "-1", "SINK_RETRIES='-1': expected an integer of at least 0"),
        (
            "PRODUCER_CLIENT",
            "librdkafka",
            "PRODUCER_CLIENT='librdkafka': expected one of kafka-python, confluent-kafka",
        ),
        (
            "CLICKHOUSE_URL",
            "ftp://reader:s3cret@db:8123/x",
            "CLICKHOUSE_URL='ftp://reader:***@db:8123/x': expected chdb://PATH or",
        ),
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


def test_a_password_in_a_bad_url_is_never_shown():
    with pytest.raises(SettingsError) as caught:
        load(environ={"CLICKHOUSE_URL": "http://admin:hunter2@:8123/db"})
    assert "hunter2" not in str(caught.value)
    assert str(caught.value).startswith("CLICKHOUSE_URL='http://admin:***@:8123/db'")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # A password with the characters that end a URL's user part early.
        ("http://admin:hun/ter2@:8123/db", "http://admin:***@:8123/db"),
        ("http://admin:hun@ter2@:8123/db", "http://admin:***@:8123/db"),
        ("http://admin:hun?ter#2@:8123/db", "http://admin:***@:8123/db"),
        ("HTTPS://:hunter2@:8443/db", "HTTPS://:***@:8443/db"),
        # The user and its @ forgotten: what follows the host's colon is no port.
        ("ftp://db:hunter2/x", "ftp://db:***/x"),
    ],
)
def test_no_password_of_a_bad_url_is_shown_whatever_it_holds(url, shown):
    with pytest.raises(SettingsError) as caught:
        load(environ={"CLICKHOUSE_URL": url})
    message = str(caught.value)
    assert message.startswith(f"CLICKHOUSE_URL={shown!r}: ")
    assert all(part not in message for part in ("hunter2", "hun", "ter2", "ter#2"))


def test_a_port_that_is_not_a_number_is_refused_without_showing_it():
    with pytest.raises(SettingsError) as caught:
        load(environ={"CLICKHOUSE_URL": "http://db:hunter2"})
    assert str(caught.value) == "CLICKHOUSE_URL='http://db:***': the port must be a number"


def test_the_counts_ttl_named_in_settings_is_the_one_the_migrations_create():
    from app.settings import PAGE_CLICKS_TTL_DAYS
    from app.storage.migrations import discover

    newest = [m for m in discover() if "CREATE TABLE page_clicks_1m" in m.sql][-1]
    assert f"TTL window_start + INTERVAL {PAGE_CLICKS_TTL_DAYS} DAY" in newest.sql


def test_the_events_ttl_covers_every_event_validation_accepts():
    from app.settings import PAGE_CLICKS_TTL_DAYS
    from app.storage.migrations import discover

    newest = [m for m in discover() if "CREATE TABLE events" in m.sql][-1]
    assert f"TTL toDateTime(event_time) + INTERVAL {PAGE_CLICKS_TTL_DAYS} DAY" in newest.sql


def test_events_ttl_must_outlast_the_oldest_event_validation_accepts():
    with pytest.raises(SettingsError) as caught:
        load(environ={"EVENTS_TTL_DAYS": "30"})
    assert str(caught.value).startswith("EVENTS_TTL_DAYS=30: at least a day more than")
    assert "MAX_EVENT_AGE=89d" in str(caught.value)
    shorter = load(environ={"EVENTS_TTL_DAYS": "30", "MAX_EVENT_AGE": "29d"})
    assert (shorter.events_ttl_days, load(environ={}).events_ttl_days) == (30, 90)


# ---- the Spark cluster's shared secret (spark.authenticate)

SECRET = "0123456789abcdef0123456789abcdef"


def test_a_spark_cluster_without_its_secret_is_refused_by_name():
    with pytest.raises(SettingsError) as caught:
        load(environ={"SPARK_MASTER": "spark://127.0.0.1:7077"})
    assert str(caught.value) == (
        "SPARK_AUTH_SECRET is empty: SPARK_MASTER=spark://127.0.0.1:7077 is a standalone "
        "cluster, which accepts only applications that know its shared secret "
        "(spark.authenticate); set it to the master's and worker's secret"
    )


def test_local_spark_needs_no_secret_and_a_cluster_takes_one():
    assert load(environ={}).spark_auth_secret == ""
    assert load(environ={"SPARK_MASTER": "local[2]"}).spark_master == "local[2]"
    cluster = load(environ={"SPARK_MASTER": "spark://m:7077", "SPARK_AUTH_SECRET": SECRET})
    assert cluster.spark_auth_secret == SECRET


@pytest.mark.parametrize(
    "bad",
    [
        "short-secret-15",  # 16 needed
        "0123456789abcdef 0123",  # a blank: systemd and Java properties read it differently
        "0123456789abcdef\\0123",  # a backslash: an escape in a Java properties file
        '"0123456789abcdef0123"',  # quotes: systemd's env file would strip them
    ],
)
def test_a_secret_spark_and_systemd_would_read_differently_is_refused_unshown(bad):
    with pytest.raises(SettingsError) as caught:
        load(environ={"SPARK_AUTH_SECRET": bad})
    message = str(caught.value)
    assert message.startswith("SPARK_AUTH_SECRET=(hidden): expected 16 or more letters")
    assert "0123" not in message and "short" not in message


def test_the_secret_is_not_in_the_settings_repr():
    cluster = load(environ={"SPARK_MASTER": "spark://m:7077", "SPARK_AUTH_SECRET": SECRET})
    assert SECRET not in repr(cluster)
    assert "spark_master='spark://m:7077'" in repr(cluster)


def test_no_secret_setting_is_in_the_settings_repr():
    # The webhook URL holds the Slack token in its path: as secret as the Spark one.
    hook = "https://hooks.slack.com/services/T000/B000/token-in-the-path"
    values = load(
        environ={
            "NOTIFY_WEBHOOK_URL": hook,
            "SPARK_MASTER": "spark://m:7077",
            "SPARK_AUTH_SECRET": SECRET,
        }
    )
    assert values.notify_webhook_url == hook
    assert "token-in-the-path" not in repr(values) and SECRET not in repr(values)
    assert [s.env for s in SETTINGS if s.secret] == ["NOTIFY_WEBHOOK_URL", "SPARK_AUTH_SECRET"]
