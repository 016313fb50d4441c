"""The demo's live terminal view: what the pipeline is doing, read back from ClickHouse.

``snapshot`` queries the same views the dashboards use; ``render`` turns a snapshot into
text and is a pure function, so it is tested without a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.funnel import FUNNEL_STEPS
from app.storage import ClickHouseStore

TOP = 8


@dataclass
class Snapshot:
    taken_at: datetime
    window_seconds: float
    current_window: datetime
    current_top: list[tuple[str, int]] = field(default_factory=list)
    previous_top: list[tuple[str, int]] = field(default_factory=list)
    counted_total: int = 0
    events_per_second: float = 0.0
    rejected: list[tuple[str, int]] = field(default_factory=list)
    late_rows: int = 0
    batch_duration_ms: int = 0
    kafka_lag: int = 0
    batches: int = 0
    # Where every record read went (pipeline_accounting): read = the other four.
    records_read: int = 0
    duplicates_removed: int = 0
    rejected_total: int = 0
    counted_events: int = 0
    unbalanced_batches: int = 0
    # Distinct visitors (user_id) in the current minute and over the last 60 minutes.
    visitors_this_minute: int = 0
    visitors_last_hour: int = 0
    # Sessions with an event in the last 5 minutes; the share of those minutes' events
    # from crawler agents; closed sessions flagged as bots (any rule) in the last hour.
    active_sessions: int = 0
    bot_agent_share: float = 0.0
    bot_sessions_last_hour: int = 0
    sessions_last_hour: int = 0
    # Sessions at each funnel step over the last hour, home to purchase (bots by agent out).
    funnel: list[int] = field(default_factory=list)
    # What fires now (open_alerts), oldest first: its message.
    open_alerts: list[str] = field(default_factory=list)


def _window_literal(moment: datetime) -> str:
    return f"toDateTime('{moment:%Y-%m-%d %H:%M:%S}', 'UTC')"


def snapshot(
    store: ClickHouseStore, window_seconds: float, now: datetime | None = None
) -> Snapshot:
    now = now or datetime.now(UTC)
    start = int(now.timestamp() // window_seconds * window_seconds)
    current = datetime.fromtimestamp(start, UTC)
    previous = datetime.fromtimestamp(start - window_seconds, UTC)
    snap = Snapshot(now, window_seconds, current)

    def top(window: datetime) -> list[tuple[str, int]]:
        rows = store.query(
            "SELECT page_url, clicks FROM page_clicks_latest "
            f"WHERE window_start = {_window_literal(window)} "
            f"ORDER BY clicks DESC, page_url LIMIT {TOP}"
        )
        return [(r["page_url"], r["clicks"]) for r in rows]

    snap.current_top, snap.previous_top = top(current), top(previous)
    snap.counted_total = store.query("SELECT toUInt64(sum(clicks)) AS n FROM page_clicks_latest")[
        0
    ]["n"]
    snap.rejected = [
        (r["reason"], r["n"])
        for r in store.query(
            "SELECT reason, count() AS n FROM rejected_events FINAL "
            "GROUP BY reason ORDER BY n DESC, reason"
        )
    ]
    progress = store.query(
        "SELECT count() AS batches, toUInt64(sum(rows_dropped_by_watermark)) AS late, "
        "argMax(batch_duration_ms, reported_at) AS duration, "
        "argMax(kafka_lag, reported_at) AS lag, "
        "avgIf(input_rows_per_second, reported_at > now64(3) - INTERVAL 30 SECOND "
        "AND num_input_rows > 0) AS rate, "
        "toUInt64(sum(num_input_rows)) AS sum_read, toUInt64(sum(counted)) AS sum_counted, "
        "toUInt64(sum(duplicates_removed)) AS sum_duplicates, "
        "toUInt64(sum(rejected)) AS sum_rejected, "
        "toUInt64(countIf(num_input_rows != counted + duplicates_removed "
        "+ rows_dropped_by_watermark + rejected)) AS unbalanced "
        "FROM pipeline_progress FINAL"
    )[0]
    snap.batches = progress["batches"]
    snap.late_rows = progress["late"]
    snap.records_read = progress["sum_read"]
    snap.counted_events = progress["sum_counted"]
    snap.duplicates_removed = progress["sum_duplicates"]
    snap.rejected_total = progress["sum_rejected"]
    snap.unbalanced_batches = progress["unbalanced"]
    snap.batch_duration_ms = progress["duration"]
    snap.kafka_lag = progress["lag"]
    minute = int(now.timestamp() // 60 * 60)
    visitors = store.query(
        "SELECT uniqExactMergeIf(visitors, window_start = "
        f"{_window_literal(datetime.fromtimestamp(minute, UTC))}) AS minute, "
        "uniqExactMerge(visitors) AS hour FROM unique_visitors_1m "
        f"WHERE window_start > {_window_literal(datetime.fromtimestamp(minute - 3600, UTC))} "
        f"AND window_start <= {_window_literal(datetime.fromtimestamp(minute, UTC))}"
    )[0]
    snap.visitors_this_minute, snap.visitors_last_hour = visitors["minute"], visitors["hour"]
    active = store.query("SELECT * FROM active_sessions")[0]
    snap.active_sessions = active["active_sessions"]
    snap.bot_agent_share = (
        active["bot_agent_events"] / active["events"] if active["events"] else 0.0
    )
    closed = store.query(
        "SELECT count() AS sessions, toUInt64(sum(is_bot)) AS bots FROM sessions FINAL "
        "WHERE session_end > now64(3) - INTERVAL 1 HOUR"
    )[0]
    snap.sessions_last_hour, snap.bot_sessions_last_hour = closed["sessions"], closed["bots"]
    snap.funnel = [
        r["sessions"]
        for r in store.query("SELECT sessions FROM funnel_last(minutes = 60, bots = 0)")
    ]
    snap.open_alerts = [r["message"] for r in store.query("SELECT message FROM open_alerts")]
    rate = progress["rate"]
    snap.events_per_second = 0.0 if rate is None or rate != rate else rate
    return snap


def _column(title: str, rows: list[tuple[str, int]], width: int = 30) -> list[str]:
    lines = [title, "-" * len(title)]
    lines += [f"{page[:width]:<{width}} {clicks:>7}" for page, clicks in rows] or ["(none yet)"]
    return lines


def render(snap: Snapshot, status: str = "") -> str:
    span = int(snap.window_seconds)
    left = _column(f"current window {snap.current_window:%H:%M:%S} ({span}s)", snap.current_top)
    prev_start = datetime.fromtimestamp(snap.current_window.timestamp() - span, UTC)
    right = _column(f"previous window {prev_start:%H:%M:%S}", snap.previous_top)
    height = max(len(left), len(right))
    left += [""] * (height - len(left))
    right += [""] * (height - len(right))
    out = [
        f"clickstream demo  {snap.taken_at:%Y-%m-%d %H:%M:%S} UTC  {status}".rstrip(),
        "",
        *(f"{a:<40}  {b}" for a, b in zip(left, right, strict=True)),
        "",
        f"events in/s {snap.events_per_second:>9.1f}"
        f"    batch duration {snap.batch_duration_ms:>6} ms"
        f"    kafka lag {snap.kafka_lag:>7}    batches {snap.batches}",
        f"clicks counted {snap.counted_total:>8}    late rows dropped {snap.late_rows:>6}",
        f"unique visitors: this minute {snap.visitors_this_minute}"
        f", last hour {snap.visitors_last_hour}"
        f"    active sessions (5 min) {snap.active_sessions}"
        f"    bot-agent share {snap.bot_agent_share:.1%}",
        "funnel, last hour: "
        + (
            " > ".join(f"{name} {n}" for name, n in zip(FUNNEL_STEPS, snap.funnel, strict=True))
            if snap.funnel
            else "none yet"
        ),
        f"sessions closed, last hour {snap.sessions_last_hour}"
        f" (bots {snap.bot_sessions_last_hour})",
        f"records read {snap.records_read} = counted {snap.counted_events}"
        f" + duplicates {snap.duplicates_removed} + late {snap.late_rows}"
        f" + rejected {snap.rejected_total}"
        + ("" if not snap.unbalanced_batches else f"    UNBALANCED {snap.unbalanced_batches}"),
        "rejected: "
        + (", ".join(f"{reason} {n}" for reason, n in snap.rejected) if snap.rejected else "none"),
        "alerts: " + ("; ".join(snap.open_alerts) if snap.open_alerts else "none firing"),
    ]
    return "\n".join(out)
