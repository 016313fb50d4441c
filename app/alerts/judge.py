"""The processor's judgement after each batch: readings from ClickHouse, alerts back into it.

Everything is read as it stood for the batch: the events the batches so far inserted, the
progress rows of the batches before this one, the alerts as the batches before this one
left them. The clock is the batch's own (it is in the checkpoint's offset log). A
replayed batch therefore reads the same, judges the same and writes the same rows under
the same token, and publishes the same transitions, which the notifier has already seen
by id (it posts each once).

The data clock: the newest event time in `events` no later than the batch's clock. The
page_drop windows are measured back from it, not from the wall clock, so a processor
that catches up on a backlog judges each stretch of traffic as it was, and a client with a
fast clock cannot move it (later event times are left out).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.alerts import rules as R
from app.storage import ClickHouseStore
from app.storage.base import quote_string

ALERTS_COLUMNS = (
    "alert_id",
    "rule",
    "subject",
    "state",
    "value",
    "baseline",
    "threshold",
    "first_seen",
    "last_seen",
    "resolved_at",
    "message",
    "batch_id",
    "query_id",
)
# The rules the processor judges (pipeline_stalled is the notifier's).
PROCESSOR_RULES = (R.PAGE_DROP, R.REJECTS_FLOOD, R.PIPELINE_BEHIND)
REJECTS_SPAN_SECONDS = 60
# The notifier's rows (pipeline_stalled): judged by no batch of any query.
NOTIFIER_QUERY_ID, NOTIFIER_BATCH_ID = "notifier", -1


def _ms_literal(ms: int) -> str:
    return f"fromUnixTimestamp64Milli(toInt64({int(ms)}), 'UTC')"


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def data_clock_ms(
    store: ClickHouseStore, batch_time_ms: int, lookback_seconds: float
) -> int | None:
    """The newest event time at or before the batch's clock; None while events is empty.

    Looked for in the lookback first (a range of the table's sort key: a few granules),
    and only when that is empty in the whole table, read in order from its end."""
    since = batch_time_ms - int(lookback_seconds * 1000)
    rows = store.query(
        "SELECT count() AS n, toInt64(toUnixTimestamp64Milli(max(event_time))) AS ms "
        f"FROM events WHERE event_time > {_ms_literal(since)} "
        f"AND event_time <= {_ms_literal(batch_time_ms)}"
    )
    if rows and rows[0]["n"]:
        return int(rows[0]["ms"])
    rows = store.query(
        "SELECT toInt64(toUnixTimestamp64Milli(event_time)) AS ms FROM events "
        f"WHERE event_time <= {_ms_literal(batch_time_ms)} ORDER BY event_time DESC LIMIT 1"
    )
    return int(rows[0]["ms"]) if rows else None


def page_counts(
    store: ClickHouseStore, rules: R.AlertRules, clock_ms: int
) -> dict[str, tuple[int, int]]:
    """{page: (count in the recent window, count in the baseline stretch)} of watched pages.

    recent = the ALERT_WINDOW whole seconds that end at (clock - ALERT_SETTLE), rounded
    down to a second; baseline = the ALERT_BASELINE just before it. Valid, deduplicated
    events of exactly that page_url, counted per second by page_events_1s.
    """
    recent_end = (clock_ms - int(rules.settle_seconds * 1000)) // 1000
    recent_start = recent_end - int(rules.window_seconds)
    baseline_start = recent_start - int(rules.baseline_seconds)
    pages = ", ".join(quote_string(p) for p in rules.pages)
    rows = store.query(
        "SELECT page_url, "
        f"sumIf(events, second >= toDateTime({recent_start}, 'UTC')) AS recent, "
        f"sumIf(events, second < toDateTime({recent_start}, 'UTC')) AS baseline "
        f"FROM page_events_1s WHERE page_url IN ({pages}) "
        f"AND second >= toDateTime({baseline_start}, 'UTC') "
        f"AND second < toDateTime({recent_end}, 'UTC') "
        "GROUP BY page_url"
    )
    counts = {page: (0, 0) for page in rules.pages}
    counts.update({r["page_url"]: (int(r["recent"]), int(r["baseline"])) for r in rows})
    return counts


def records_before(
    store: ClickHouseStore, query_id: str, batch_id: int, batch_time_ms: int
) -> tuple[int, int]:
    """(read, rejected) by this query's earlier batches in the minute up to this batch."""
    since = batch_time_ms - REJECTS_SPAN_SECONDS * 1000
    rows = store.query(
        "SELECT toInt64(sum(num_input_rows)) AS read, toInt64(sum(rejected)) AS rejected "
        f"FROM pipeline_progress WHERE query_id = {quote_string(query_id)} "
        f"AND batch_id < {int(batch_id)} AND batch_time > {_ms_literal(since)}"
    )
    return (int(rows[0]["read"] or 0), int(rows[0]["rejected"] or 0)) if rows else (0, 0)


def open_alerts(
    store: ClickHouseStore, query_id: str, batch_id: int
) -> dict[tuple[str, str], R.Alert]:
    """The processor's alerts still firing after this query's batches before this one."""
    rules = ", ".join(quote_string(r) for r in PROCESSOR_RULES)
    rows = store.query(
        "SELECT alert_id, rule, subject, state, value, baseline, threshold, "
        "toInt64(toUnixTimestamp64Milli(first_seen)) AS first_ms, "
        "toInt64(toUnixTimestamp64Milli(last_seen)) AS last_ms "
        f"FROM alerts WHERE query_id = {quote_string(query_id)} AND batch_id < {int(batch_id)} "
        f"AND rule IN ({rules}) ORDER BY alert_id, last_seen DESC LIMIT 1 BY alert_id"
    )
    return {
        (r["rule"], r["subject"]): R.Alert(
            alert_id=r["alert_id"],
            rule=r["rule"],
            subject=r["subject"],
            state=r["state"],
            value=float(r["value"]),
            baseline=float(r["baseline"]),
            threshold=float(r["threshold"]),
            first_seen_ms=int(r["first_ms"]),
            last_seen_ms=int(r["last_ms"]),
            resolved_ms=None,
        )
        for r in rows
        if r["state"] == R.FIRING
    }


def readings(
    store: ClickHouseStore,
    rules: R.AlertRules,
    open_now: dict[tuple[str, str], R.Alert],
    batch_time_ms: int,
    kafka_lag: int,
    minute: tuple[int, int],
) -> list[R.Reading]:
    """Every rule's reading at this batch. `minute` is (read, rejected) over the last minute."""
    lookback = rules.settle_seconds + rules.window_seconds + rules.baseline_seconds
    clock = data_clock_ms(store, batch_time_ms, lookback)
    freshness = (batch_time_ms - clock) / 1000 if clock is not None else None
    found: list[R.Reading] = []
    if clock is not None and rules.pages:
        for page, (recent, baseline) in page_counts(store, rules, clock).items():
            open_alert = open_now.get((R.PAGE_DROP, page))
            found.append(R.page_drop(page, recent, baseline, rules, open_alert))
    found.append(R.rejects_flood(*minute, rules))
    found += R.pipeline_behind(kafka_lag, freshness, rules)
    return found


def alert_row(alert: R.Alert, batch_id: int, query_id: str) -> tuple[Any, ...]:
    return (
        alert.alert_id,
        alert.rule,
        alert.subject,
        alert.state,
        alert.value,
        alert.baseline,
        alert.threshold,
        _utc(alert.first_seen_ms),
        _utc(alert.last_seen_ms),
        _utc(alert.resolved_ms) if alert.resolved_ms is not None else None,
        alert.message,
        batch_id,
        query_id,
    )


def record_notifier_alerts(store: ClickHouseStore, alerts: list[R.Alert]) -> None:
    """The notifier's changes into the alerts table, each once (a token per alert, state)."""
    for alert in alerts:
        store.insert(
            "alerts",
            ALERTS_COLUMNS,
            [alert_row(alert, NOTIFIER_BATCH_ID, NOTIFIER_QUERY_ID)],
            dedup_token=f"{NOTIFIER_QUERY_ID}:{alert.alert_id}:{alert.state}",
        )
