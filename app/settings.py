"""The settings contract: one typed object, read from the environment, CLI flags override.

Every setting is declared once, as a field of ``Settings`` below: its name (the
environment variable's, in lower case), type, default and meaning; ``SETTINGS`` lists
the same declarations for the loader, the flags and the README table. The README table,
the CLI flags, the Ansible env files and the systemd units all use these names, so a
value flows role default -> env file -> ``Settings`` -> code, and nowhere else. Nothing
outside this module reads ``os.environ`` for configuration.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlparse


class SettingsError(ValueError):
    """A setting has a value the program cannot run with; the message names the setting."""


class _Invalid(ValueError):
    """Raised by the parsers below; its message says what a valid value looks like."""


def _number(text: str, kind: Callable[[str], Any], expected: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise _Invalid(f"expected {expected}") from None


_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}

# page_clicks_1m drops a row 90 days after its window starts (app/sql, its TTL): ClickHouse
# discards a row that is already expired when it is inserted, without an error, so the
# processor must reject older events itself (MAX_EVENT_AGE, checked below). A test keeps
# this number in step with the migration.
PAGE_CLICKS_TTL_DAYS = 90

# The Kafka client libraries the producer can publish with (app/producer/publisher.py).
PRODUCER_CLIENTS = ("kafka-python", "confluent-kafka")


def parse_duration(text: str) -> float:
    """Seconds from '90', '90s', '2m', '1h', '7d' or '500ms'."""
    match = _DURATION.match(text)
    if not match:
        raise _Invalid("expected a duration such as 60s, 2m, 1h, 7d or 500ms")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


def _rate(text: str) -> float:
    value = _number(text, float, "a fraction between 0 and 1")
    if not 0.0 <= value <= 1.0:
        raise _Invalid("expected a fraction between 0 and 1")
    return value


def _positive_int(text: str) -> int:
    value = _number(text, int, "an integer of at least 1")
    if value < 1:
        raise _Invalid("expected an integer of at least 1")
    return value


def _non_negative_int(text: str) -> int:
    value = _number(text, int, "an integer of at least 0")
    if value < 0:
        raise _Invalid("expected an integer of at least 0")
    return value


def _positive_float(text: str) -> float:
    value = _number(text, float, "a number above 0")
    if value <= 0:
        raise _Invalid("expected a number above 0")
    return value


def _positive_duration(text: str) -> float:
    value = parse_duration(text)
    if value <= 0:
        raise _Invalid("expected a duration above 0")
    return value


def _non_negative_duration(text: str) -> float:
    return parse_duration(text)


def _clickhouse_url(text: str) -> str:
    parsed = urlparse(text)
    if parsed.scheme == "chdb":
        if not (parsed.netloc + parsed.path):
            raise _Invalid("chdb:// needs a folder, e.g. chdb://.data/clickhouse")
    elif parsed.scheme in ("http", "https"):
        if not parsed.hostname:
            raise _Invalid("an http(s) URL needs a host, e.g. http://user:pass@host:8123/db")
        try:
            parsed.port  # noqa: B018 (parsing it is the check; its error shows the value)
        except ValueError:
            raise _Invalid("the port must be a number") from None
    else:
        raise _Invalid("expected chdb://PATH or http(s)://user:password@host:port/database")
    return text


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise _Invalid(f"expected one of {', '.join(allowed)}")
        return text

    return parse


def _text(text: str) -> str:
    if not text.strip():
        raise _Invalid("must not be empty")
    return text.strip()


def _matching_or_empty(pattern: str, expected: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def parse(text: str) -> str:
        value = text.strip()
        if value and not compiled.fullmatch(value):
            raise _Invalid(f"expected {expected}, or empty")
        return value

    return parse


def _page_or_empty(text: str) -> str:
    page = text.strip()
    if page and not page.startswith("/"):
        raise _Invalid("expected a page path such as /cart, or nothing")
    return page


def _pages(text: str) -> tuple[str, ...]:
    """Comma-separated page paths, such as '/cart,/checkout'; empty means none."""
    pages = tuple(p.strip() for p in text.split(",") if p.strip())
    for page in pages:
        if not page.startswith("/"):
            raise _Invalid(f"expected page paths such as /cart,/checkout; {page!r} is not one")
    return pages


def _webhook_url(text: str) -> str:
    url = text.strip()
    if url:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise _Invalid("expected an http(s) URL such as https://hooks.slack.com/services/...")
    return url


def _p_value(text: str) -> float:
    value = _number(text, float, "a probability above 0 and below 1")
    if not 0.0 < value < 1.0:
        raise _Invalid("expected a probability above 0 and below 1")
    return value


def _integer(text: str) -> int:
    return _number(text, int, "an integer")


# What a shared secret may hold: the alphabets of `openssl rand -hex` and `-base64`. It is
# written into Spark's spark-defaults.conf (a Java properties file, where a backslash or
# leading blank is not what it seems) and into systemd env files (where quotes and
# blanks are), so anything else would arrive changed on one side and not the other.
_SECRET = re.compile(r"^[A-Za-z0-9+/=._-]{16,}$")


def _secret_or_empty(text: str) -> str:
    if text and not _SECRET.match(text):
        raise _Invalid(
            "expected 16 or more letters, digits or + / = . _ - (e.g. `openssl rand -hex 32`), "
            "or nothing"
        )
    return text


@dataclass(frozen=True)
class Setting:
    env: str
    group: str
    default: str
    parse: Callable[[str], Any]
    help: str
    # A secret's value is never shown, not even in the message that refuses it.
    secret: bool = False

    @property
    def attr(self) -> str:
        return self.env.lower()

    @property
    def flag(self) -> str:
        return "--" + self.env.lower().replace("_", "-")


def setting(
    group: str, default: str, parse: Callable[[str], Any], help: str, secret: bool = False
) -> Any:
    """One setting, declared as a field of ``Settings``: its environment name is the
    field's name in capitals, its value what ``parse`` makes of the text."""
    spec = {"group": group, "default": default, "parse": parse, "help": help, "secret": secret}
    # A secret is left out of the repr, so a settings object in a log line or a
    # traceback does not show it.
    return field(repr=not secret, metadata={"setting": spec})


@dataclass(frozen=True)
class Settings:
    """Every setting the programs read, each declared here once (see ``setting``)."""

    # Where things are.
    kafka_bootstrap_servers: str = setting(
        "kafka",
        "127.0.0.1:9092",
        _text,
        "Kafka brokers, host:port[,host:port]",
    )
    kafka_topic: str = setting(
        "kafka",
        "clickstream.events",
        _text,
        "Topic the producer writes and the processor reads",
    )
    kafka_partitions: int = setting(
        "kafka",
        "3",
        _positive_int,
        "Partitions of the topic when the local runtime creates it",
    )
    clickhouse_url: str = setting(
        "clickhouse",
        "chdb://.data/clickhouse",
        _clickhouse_url,
        "chdb://PATH for the embedded engine, http(s)://user:password@host:8123/db for a server",
    )
    clickhouse_database: str = setting(
        "clickhouse",
        "clickstream",
        _text,
        "Database holding the tables (also the database of a server URL without one)",
    )
    # The producer's traffic model.
    producer_rate: float = setting(
        "producer",
        "200",
        _positive_float,
        "Events per second the producer aims for",
    )
    producer_duration: float = setting(
        "producer",
        "0",
        _non_negative_duration,
        "Stop after this long (e.g. 60s, 10m); 0 means no time limit",
    )
    producer_count: int = setting(
        "producer",
        "0",
        _non_negative_int,
        "Stop after this many events; 0 means no count limit",
    )
    producer_seed: int = setting(
        "producer",
        "42",
        _integer,
        "Random seed: the same seed gives the same traffic (event_ids differ per start)",
    )
    producer_bot_share: float = setting(
        "producer",
        "0.05",
        _rate,
        "Share of sessions that are bots: half crawlers with bot user agents, half "
        "scrapers with browser agents that sweep product pages fast and never buy",
    )
    incident_page: str = setting(
        "producer",
        "",
        _page_or_empty,
        "Stage an incident on this page (e.g. /cart): its traffic drops to "
        "INCIDENT_TRAFFIC_SHARE of normal for a while; empty stages none",
    )
    incident_traffic_share: float = setting(
        "producer",
        "0",
        _rate,
        "Share of the page's events still sent during the incident (0: it goes silent)",
    )
    incident_start: float = setting(
        "producer",
        "60s",
        _non_negative_duration,
        "When the incident starts, after the producer starts",
    )
    incident_duration: float = setting(
        "producer",
        "60s",
        _positive_duration,
        "How long the incident lasts",
    )
    producer_concurrent_sessions: int = setting(
        "producer",
        "2000",
        _positive_int,
        "Sessions open at once in the traffic model; with PRODUCER_RATE it sets how fast "
        "one visitor clicks (about 10 s between a human's events at the defaults)",
    )
    producer_compression: str = setting(
        "producer",
        "lz4",
        _choice("none", "gzip", "lz4"),
        "Kafka compression codec",
    )
    producer_client: str = setting(
        "producer",
        "kafka-python",
        _choice(*PRODUCER_CLIENTS),
        "Kafka client library the producer publishes with; both send the same bytes with "
        "the same settings (acks=all, idempotent, linger 20 ms), and both make the program "
        "wait while too many records are unanswered (kafka-python 10,000, librdkafka 100,000)",
    )
    producer_manifest: str = setting(
        "producer",
        "",
        str,
        "Write counts per window and page of valid, on-time, unique events here "
        "(JSON); empty means no manifest",
    )
    fault_malformed_rate: float = setting(
        "producer",
        "0",
        _rate,
        "Share of messages sent as malformed JSON",
    )
    fault_null_user_rate: float = setting(
        "producer",
        "0",
        _rate,
        "Share of events sent with a null user_id",
    )
    fault_null_page_rate: float = setting(
        "producer",
        "0",
        _rate,
        "Share of events sent with a null page_url",
    )
    fault_late_rate: float = setting(
        "producer",
        "0",
        _rate,
        "Share of events whose event_time is pushed into the past by FAULT_LATE_DELAY",
    )
    fault_late_delay: float = setting(
        "producer",
        "10m",
        _positive_duration,
        "How far into the past a late event's event_time is pushed",
    )
    fault_duplicate_rate: float = setting(
        "producer",
        "0",
        _rate,
        "Share of events sent twice with the same event_id",
    )
    # The processor.
    window_duration: float = setting(
        "processor",
        "1m",
        _positive_duration,
        "Length of the tumbling windows",
    )
    watermark_delay: float = setting(
        "processor",
        "2m",
        _non_negative_duration,
        "How late an event may arrive (behind the newest event time) and still count",
    )
    trigger_interval: float = setting(
        "processor",
        "5s",
        _positive_duration,
        "How often a micro-batch starts, so how fresh the counts are",
    )
    max_offsets_per_trigger: int = setting(
        "processor",
        "100000",
        _positive_int,
        "Upper bound of Kafka records read per micro-batch (how fast a backlog drains)",
    )
    shuffle_partitions: int = setting(
        "processor",
        "2",
        _positive_int,
        "spark.sql.shuffle.partitions (state partitions; fixed once a checkpoint exists)",
    )
    max_future_skew: float = setting(
        "processor",
        "5m",
        _non_negative_duration,
        "Events whose event_time is further than this in the future are rejected",
    )
    max_event_age: float = setting(
        "processor",
        "89d",
        _positive_duration,
        "Events whose event_time is older than this are rejected as expired_event_time "
        f"(below the {PAGE_CLICKS_TTL_DAYS}-day TTL of page_clicks_1m)",
    )
    max_event_bytes: int = setting(
        "processor",
        "4096",
        _positive_int,
        "Messages larger than this are rejected as oversized",
    )
    max_page_url_length: int = setting(
        "processor",
        "2048",
        _positive_int,
        "A page_url longer than this many characters is rejected as page_url_too_long",
    )
    reject_sample_bytes: int = setting(
        "processor",
        "1024",
        _positive_int,
        "How much of a rejected message rejected_events keeps (raw_prefix); its length "
        "and SHA-256 are always kept",
    )
    events_ttl_days: int = setting(
        "processor",
        str(PAGE_CLICKS_TTL_DAYS),
        _positive_int,
        "Days of event time the events table keeps (set on the table when the processor "
        "starts); at least a day more than MAX_EVENT_AGE",
    )
    session_idle_timeout: float = setting(
        "processor",
        "30m",
        _positive_duration,
        "A session closes (gets its row in sessions) once the watermark is this far past "
        "its last event",
    )
    long_session_duration: float = setting(
        "processor",
        "1h",
        _positive_duration,
        "A closed session at least this long is flagged long_session",
    )
    repeated_views: int = setting(
        "processor",
        "5",
        _positive_int,
        "A session with at least this many page views of one page is flagged repeated_views",
    )
    bot_max_pages_per_minute: float = setting(
        "processor",
        "20",
        _positive_float,
        "A session with BOT_MIN_PAGES page views or more, viewing more pages per minute "
        "than this, is a bot (pages_per_minute)",
    )
    bot_min_pages: int = setting(
        "processor",
        "10",
        _positive_int,
        "How many page views (pages_per_minute) or events (constant_intervals) a session "
        "needs before its pace is judged",
    )
    bot_max_interval_cv: float = setting(
        "processor",
        "0.1",
        _positive_float,
        "A session whose gaps between events vary less than this (standard deviation / "
        "mean) is a bot (constant_intervals)",
    )
    bot_min_views_without_cart: int = setting(
        "processor",
        "30",
        _positive_int,
        "A session with this many page views and no cart is a bot (no_cart_many_views)",
    )
    # Alerts: the rules the processor judges after each batch (app/alerts/rules.py).
    alert_pages: tuple[str, ...] = setting(
        "alerts",
        "/cart,/checkout",
        _pages,
        "Pages watched by the page_drop rule (comma-separated); empty watches none",
    )
    alert_window: float = setting(
        "alerts",
        "10s",
        _positive_duration,
        "page_drop: the recent stretch of event time whose count is judged",
    )
    alert_baseline: float = setting(
        "alerts",
        "5m",
        _positive_duration,
        "page_drop: the stretch before ALERT_WINDOW whose rate gives the expected count",
    )
    alert_settle: float = setting(
        "alerts",
        "2s",
        _non_negative_duration,
        "page_drop: the newest event time left out (events still on their way)",
    )
    alert_min_expected: float = setting(
        "alerts",
        "20",
        _positive_float,
        "page_drop: a page expected to have fewer events than this in ALERT_WINDOW is too "
        "quiet to judge",
    )
    alert_drop_share: float = setting(
        "alerts",
        "0.3",
        _rate,
        "page_drop fires only when the count is at most this share of the expected count",
    )
    alert_p_value: float = setting(
        "alerts",
        "0.0001",
        _p_value,
        "page_drop fires only when a count this low has at most this probability under "
        "the baseline's Poisson rate",
    )
    alert_recover_share: float = setting(
        "alerts",
        "0.6",
        _rate,
        "page_drop resolves when the count is back to this share of the baseline frozen "
        "when it fired",
    )
    alert_reject_share: float = setting(
        "alerts",
        "0.1",
        _rate,
        "rejects_flood fires when more than this share of the last minute's records are rejected",
    )
    alert_reject_min_records: int = setting(
        "alerts",
        "100",
        _positive_int,
        "rejects_flood judges a minute only when it read at least this many records",
    )
    alert_max_lag: int = setting(
        "alerts",
        "1000000",
        _positive_int,
        "pipeline_behind fires when the job is more than this many records behind Kafka",
    )
    alert_max_freshness: float = setting(
        "alerts",
        "60s",
        _positive_duration,
        "pipeline_behind fires when the newest counted event is older than this at a batch",
    )
    alerts_topic: str = setting(
        "alerts",
        "clickstream.alerts",
        _text,
        "Kafka topic of alert changes and the processor's heartbeats, read by the notifier",
    )
    # The notifier (app/notifier).
    alert_stall_after: float = setting(
        "notifier",
        "60s",
        _positive_duration,
        "pipeline_stalled fires when records have waited this long in the events topic "
        "with no batch finishing (an idle spell is no stall)",
    )
    notify_webhook_url: str = setting(
        "notifier",
        "",
        _webhook_url,
        "Slack-compatible incoming-webhook URL alerts are posted to (a secret); empty "
        "logs them only",
        secret=True,
    )
    notify_cooldown: float = setting(
        "notifier",
        "5m",
        _non_negative_duration,
        "After a firing is posted, another firing of the same rule and subject within this "
        "long is logged, not posted (nor its resolution)",
    )
    notify_retries: int = setting(
        "notifier",
        "5",
        _non_negative_int,
        "Times a failed post is retried (waits double from 1 s, at most 60 s) before the "
        "notifier stops and systemd restarts it",
    )
    notifier_state: str = setting(
        "notifier",
        ".data/notifier.sqlite",
        _text,
        "The notifier's ledger of what it has posted (SQLite), so a restart posts nothing twice",
    )
    # The appliance's health in CloudWatch (python -m app.metrics, every minute).
    metrics_instance_id: str = setting(
        "metrics",
        "",
        _matching_or_empty(r"i-[0-9a-f]{8,17}", "an EC2 instance id (i-0123456789abcdef0)"),
        "The EC2 instance the metrics are published for (their InstanceId dimension); "
        "empty: log the reading only",
    )
    metrics_namespace: str = setting(
        "metrics",
        "Clickstream",
        _text,
        "CloudWatch namespace of the metrics (terraform's alarms watch this one)",
    )
    metrics_region: str = setting(
        "metrics",
        "",
        _matching_or_empty(r"[a-z]{2}(-[a-z]+)+-\d", "an AWS region (us-west-2)"),
        "AWS region to publish to; empty: boto3's own (AWS_REGION, the instance's profile)",
    )
    metrics_data_path: str = setting(
        "metrics",
        ".data",
        _text,
        "A folder on the data volume: its file system's use is DataVolumeUsedPercent",
    )
    sink_retries: int = setting(
        "processor",
        "5",
        _non_negative_int,
        "Times a failed ClickHouse insert is retried within the process before the query "
        "stops (systemd then restarts it)",
    )
    sink_retry_backoff: float = setting(
        "processor",
        "1s",
        _positive_duration,
        "Wait before the first retry of a failed insert; doubled each time, at most 60s",
    )
    checkpoint_dir: str = setting(
        "processor",
        ".data/checkpoints",
        _text,
        "Durable folder of the query's checkpoint (offsets, state, batch clocks), "
        "in its subfolder clickstream/",
    )
    spark_master: str = setting(
        "processor",
        "local[*]",
        _text,
        "Spark master URL (local[*], spark://host:7077, yarn, k8s://...)",
    )
    spark_auth_secret: str = setting(
        "processor",
        "",
        _secret_or_empty,
        "Shared secret of a spark:// cluster (spark.authenticate): required with a spark:// "
        "SPARK_MASTER, the same as the master's and worker's; unused with local[*] (a secret)",
        secret=True,
    )
    starting_offsets: str = setting(
        "processor",
        "earliest",
        _choice("earliest", "latest"),
        "Where a query without a checkpoint starts reading",
    )
    spark_driver_memory: str = setting(
        "processor",
        "1g",
        _text,
        "spark.driver.memory (in local[*] mode it is also the executors' memory)",
    )
    spark_driver_host: str = setting(
        "processor",
        "",
        str,
        "Address executors use to reach the driver (set it when they run in containers and "
        "the driver on the host, e.g. the Docker network's gateway); empty: Spark's default",
    )
    spark_jars: str = setting(
        "processor",
        "",
        str,
        "Comma-separated jar paths of the Kafka connector; empty resolves "
        "spark-sql-kafka from Maven Central",
    )
    # The local runtime (make demo).
    data_dir: str = setting(
        "demo",
        ".data",
        _text,
        "Folder for the local broker's log, checkpoints and the embedded ClickHouse",
    )
    demo_duration: float = setting(
        "demo",
        "0",
        _non_negative_duration,
        "make demo stops after this long; 0 runs until Ctrl-C (make demo DURATION=60)",
    )
    view_refresh: float = setting(
        "demo",
        "3s",
        _positive_duration,
        "How often the terminal view is redrawn",
    )

    def __post_init__(self) -> None:
        if self.window_duration % 1:
            raise SettingsError(
                f"WINDOW_DURATION={self.window_duration:g}s: use whole seconds (e.g. 10s, 1m)"
            )
        newest_allowed = (PAGE_CLICKS_TTL_DAYS - 1) * 86400
        if self.max_event_age > newest_allowed:
            raise SettingsError(
                f"MAX_EVENT_AGE={self.max_event_age / 86400:g}d: at most "
                f"{PAGE_CLICKS_TTL_DAYS - 1}d, a day inside the {PAGE_CLICKS_TTL_DAYS}-day "
                "TTL of page_clicks_1m (older rows would be dropped at insert, silently)"
            )
        if self.events_ttl_days * 86400 < self.max_event_age + 86400:
            raise SettingsError(
                f"EVENTS_TTL_DAYS={self.events_ttl_days}: at least a day more than "
                f"MAX_EVENT_AGE={self.max_event_age / 86400:g}d (an older event is dropped "
                "at insert, counted and yet missing from events); lower MAX_EVENT_AGE first"
            )
        for name in ("alert_window", "alert_baseline", "alert_settle"):
            if getattr(self, name) % 1:
                raise SettingsError(
                    f"{name.upper()}={getattr(self, name):g}s: use whole seconds "
                    "(page_drop counts events per second)"
                )
        if self.alert_recover_share <= self.alert_drop_share:
            raise SettingsError(
                f"ALERT_RECOVER_SHARE={self.alert_recover_share:g}: must be above "
                f"ALERT_DROP_SHARE={self.alert_drop_share:g}, or a page_drop alert could "
                "resolve at a count that would fire it again"
            )
        if self.spark_master.startswith("spark://") and not self.spark_auth_secret:
            raise SettingsError(
                f"SPARK_AUTH_SECRET is empty: SPARK_MASTER={self.spark_master} is a standalone "
                "cluster, which accepts only applications that know its shared secret "
                "(spark.authenticate); set it to the master's and worker's secret"
            )
        faults = (
            self.fault_malformed_rate
            + self.fault_null_user_rate
            + self.fault_null_page_rate
            + self.fault_late_rate
            + self.fault_duplicate_rate
        )
        if faults > 1:
            raise SettingsError(f"FAULT_*_RATE settings add up to {faults:g}; at most 1")


# The same declarations as a list, in the order above: for the loader, the CLI flags,
# the child-process environment and the README table.
SETTINGS: tuple[Setting, ...] = tuple(
    Setting(env=f.name.upper(), **f.metadata["setting"]) for f in fields(Settings)
)


def _shown(raw: str) -> str:
    """The value as an error message may show it: a URL's password replaced by ***.

    Whatever the password holds: everything between the first colon of the user part and
    the last @ is hidden (an unencoded / ? # or @ in a password cuts a parser's user part
    short), and with no @ at all, a "port" that is not a number (a password typed
    without its user@) is hidden too.
    """
    scheme, sep, rest = raw.partition("://")
    if not sep:
        return raw
    if "@" in rest:
        credentials, host = rest.rsplit("@", 1)
        user, colon, _ = credentials.partition(":")
        return f"{scheme}://{user}{colon}{'***' if colon else ''}@{host}"
    netloc, slash, path = rest.partition("/")
    host, colon, port = netloc.partition(":")
    if colon and not port.isdigit():
        return f"{scheme}://{host}:***{slash}{path}"
    return raw


def _parse_one(setting: Setting, raw: str) -> Any:
    try:
        return setting.parse(raw)
    except _Invalid as exc:
        shown = "(hidden)" if setting.secret else repr(_shown(raw))
        raise SettingsError(f"{setting.env}={shown}: {exc}") from None


def load(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, str] | None = None
) -> Settings:
    """Build the settings from the environment (default: os.environ) and CLI overrides."""
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    values = {}
    for setting in SETTINGS:
        raw = overrides.get(setting.env, environ.get(setting.env, setting.default))
        values[setting.attr] = _parse_one(setting, raw)
    return Settings(**values)


def add_arguments(parser: argparse.ArgumentParser, groups: Iterable[str]) -> None:
    """One flag per setting of the given groups; a flag overrides its environment variable."""
    wanted = set(groups)
    for setting in SETTINGS:
        if setting.group in wanted:
            parser.add_argument(
                setting.flag,
                dest=setting.env,
                metavar=setting.env,
                help=f"{setting.help} (env {setting.env}, default {setting.default!r})",
            )


def from_cli(
    description: str,
    groups: Iterable[str],
    argv: Sequence[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
    prog: str | None = None,
) -> tuple[Settings, argparse.Namespace]:
    """Parse flags, then the environment; on a bad value exit 2 with a message naming it."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_arguments(parser, groups)
    if extra:
        extra(parser)
    args = parser.parse_args(argv)
    overrides = {
        s.env: getattr(args, s.env) for s in SETTINGS if getattr(args, s.env, None) is not None
    }
    try:
        return load(overrides=overrides), args
    except SettingsError as exc:
        parser.exit(2, f"{parser.prog}: setting error: {exc}\n")


def to_environ(settings: Settings) -> dict[str, str]:
    """The settings as environment variables, for a child process (the demo's producer)."""
    out = {}
    for setting in SETTINGS:
        value = getattr(settings, setting.attr)
        if setting.parse in (_positive_duration, _non_negative_duration):
            value = f"{int(value)}s" if float(value).is_integer() else f"{round(value * 1000)}ms"
        elif isinstance(value, tuple):
            value = ",".join(value)
        out[setting.env] = str(value)
    return out


def markdown_table() -> str:
    """The README's settings table, generated so the two can never disagree."""
    lines = ["| name | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "(empty)"
        lines.append(f"| `{s.env}` | {default} | {s.help} |")
    return "\n".join(lines)
