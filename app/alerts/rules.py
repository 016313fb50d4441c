"""The alert rules: what fires, what resolves, each reading judged the same way every time.

The processor judges page_drop, rejects_flood and pipeline_behind after each batch, from
what ClickHouse holds (app/alerts/judge.py); the notifier judges pipeline_stalled, which
must fire while the processor is down (app/notifier). The functions here are pure: a
reading and the alert open on its subject (if any) in, a verdict out. The README gives
each rule's exact definition; the tests work them out by hand.

page_drop is a one-sided Poisson test against a frozen baseline:
- the expected count of a page in the recent window is its rate over the baseline
  stretch times the window's length; a page expected below ALERT_MIN_EXPECTED is too
  quiet to judge (any count would be plausible);
- it fires when the count is at most ALERT_DROP_SHARE of the expected count AND a count
  that low has probability at most ALERT_P_VALUE under Poisson(expected). The share keeps
  a statistically significant but harmless dip (busy pages, bursty sessions: real traffic
  varies more than Poisson) from paging anyone; the p-value keeps a quiet page's natural
  zero from doing so. A drop to zero is the easiest case: P(0) = exp(-expected).
- while it fires, the baseline is frozen at its value when it fired: the outage itself
  would otherwise drag the baseline down until the silence looked normal. It resolves
  when the count is back to ALERT_RECOVER_SHARE of the frozen baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from app.settings import Settings

PAGE_DROP = "page_drop"
REJECTS_FLOOD = "rejects_flood"
PIPELINE_BEHIND = "pipeline_behind"
PIPELINE_STALLED = "pipeline_stalled"
RULES = (PAGE_DROP, REJECTS_FLOOD, PIPELINE_BEHIND, PIPELINE_STALLED)

FIRING = "firing"
RESOLVED = "resolved"

# pipeline_behind's two subjects.
KAFKA_LAG = "kafka_lag"
FRESHNESS = "freshness"


@dataclass(frozen=True)
class AlertRules:
    pages: tuple[str, ...]
    window_seconds: float
    baseline_seconds: float
    settle_seconds: float
    min_expected: float
    drop_share: float
    p_value: float
    recover_share: float
    reject_share: float
    reject_min_records: int
    max_lag: int
    max_freshness_seconds: float


def rules_from(settings: Settings) -> AlertRules:
    return AlertRules(
        pages=settings.alert_pages,
        window_seconds=settings.alert_window,
        baseline_seconds=settings.alert_baseline,
        settle_seconds=settings.alert_settle,
        min_expected=settings.alert_min_expected,
        drop_share=settings.alert_drop_share,
        p_value=settings.alert_p_value,
        recover_share=settings.alert_recover_share,
        reject_share=settings.alert_reject_share,
        reject_min_records=settings.alert_reject_min_records,
        max_lag=settings.alert_max_lag,
        max_freshness_seconds=settings.alert_max_freshness,
    )


@dataclass(frozen=True)
class Reading:
    """One rule's look at one subject. firing None: not judged (too little to go on)."""

    rule: str
    subject: str
    value: float
    baseline: float
    threshold: float
    firing: bool | None


@dataclass(frozen=True)
class Alert:
    """An alert as the alerts table holds it. Times are epoch milliseconds."""

    alert_id: str
    rule: str
    subject: str
    state: str
    value: float
    baseline: float
    threshold: float
    first_seen_ms: int
    last_seen_ms: int
    resolved_ms: int | None

    @property
    def message(self) -> str:
        return describe(self)


def alert_id(rule: str, subject: str, first_seen_ms: int) -> str:
    """rule:subject:start (UTC, milliseconds): the same alert has the same id on a replay."""
    start = datetime.fromtimestamp(first_seen_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{rule}:{subject}:{start[:-3]}Z"


def poisson_cdf(k: int, mean: float) -> float:
    """P(X <= k) for X ~ Poisson(mean), summed in log space (no overflow for big means)."""
    if k < 0:
        return 0.0
    if mean <= 0:
        return 1.0
    log_terms = [-mean + i * math.log(mean) - math.lgamma(i + 1) for i in range(k + 1)]
    top = max(log_terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in log_terms))


def page_drop(
    page: str, observed: int, baseline_count: int, rules: AlertRules, open_alert: Alert | None
) -> Reading:
    """A watched page's count in the recent window against its expected count."""
    if open_alert is not None:
        frozen = open_alert.baseline
        threshold = frozen * rules.recover_share
        return Reading(PAGE_DROP, page, observed, frozen, threshold, observed < threshold)
    expected = baseline_count * rules.window_seconds / rules.baseline_seconds
    threshold = expected * rules.drop_share
    if expected < rules.min_expected:
        return Reading(PAGE_DROP, page, observed, expected, threshold, None)
    firing = observed <= threshold and poisson_cdf(observed, expected) <= rules.p_value
    return Reading(PAGE_DROP, page, observed, expected, threshold, firing)


def rejects_flood(read: int, rejected: int, rules: AlertRules) -> Reading:
    """The share of the last minute's records that were rejected."""
    if read < rules.reject_min_records:
        share = rejected / read if read else 0.0
        return Reading(REJECTS_FLOOD, "all", share, 0.0, rules.reject_share, None)
    share = rejected / read
    return Reading(REJECTS_FLOOD, "all", share, 0.0, rules.reject_share, share > rules.reject_share)


def pipeline_behind(
    kafka_lag: int, freshness_seconds: float | None, rules: AlertRules
) -> list[Reading]:
    """Records not yet read, and how old the newest counted event is (None: no event yet)."""
    return [
        Reading(
            PIPELINE_BEHIND, KAFKA_LAG, kafka_lag, 0.0, rules.max_lag, kafka_lag > rules.max_lag
        ),
        Reading(
            PIPELINE_BEHIND,
            FRESHNESS,
            freshness_seconds if freshness_seconds is not None else 0.0,
            0.0,
            rules.max_freshness_seconds,
            None if freshness_seconds is None else freshness_seconds > rules.max_freshness_seconds,
        ),
    ]


def advance(
    readings: list[Reading], open_alerts: dict[tuple[str, str], Alert], at_ms: int
) -> tuple[list[Alert], list[Alert]]:
    """(rows to write, transitions to notify) for one judgement at `at_ms`.

    A reading that fires on a subject with no open alert opens one (a transition); one
    that fires on an open alert refreshes its last_seen and value (a row, no transition);
    one that does not fire on an open alert resolves it (a transition). A reading not
    judged leaves an open alert as it is.
    """
    rows: list[Alert] = []
    transitions: list[Alert] = []
    for reading in readings:
        key = (reading.rule, reading.subject)
        current = open_alerts.get(key)
        if current is None:
            if reading.firing:
                opened = Alert(
                    alert_id=alert_id(reading.rule, reading.subject, at_ms),
                    rule=reading.rule,
                    subject=reading.subject,
                    state=FIRING,
                    value=float(reading.value),
                    baseline=float(reading.baseline),
                    threshold=float(reading.threshold),
                    first_seen_ms=at_ms,
                    last_seen_ms=at_ms,
                    resolved_ms=None,
                )
                rows.append(opened)
                transitions.append(opened)
            continue
        if reading.firing is None:
            continue
        seen = replace(current, value=float(reading.value), last_seen_ms=at_ms)
        if reading.firing:
            rows.append(seen)
        else:
            resolved = replace(seen, state=RESOLVED, resolved_ms=at_ms)
            rows.append(resolved)
            transitions.append(resolved)
    return rows, transitions


def describe(alert: Alert) -> str:
    """One line a person reads in Slack or the log."""
    if alert.rule == PAGE_DROP:
        what = (
            f"{alert.subject}: {alert.value:g} events in the last window, "
            f"{alert.baseline:.1f} expected"
        )
    elif alert.rule == REJECTS_FLOOD:
        what = (
            f"{alert.value:.1%} of the last minute's records rejected (limit {alert.threshold:.1%})"
        )
    elif alert.rule == PIPELINE_BEHIND:
        unit = " records" if alert.subject == KAFKA_LAG else " s"
        what = f"{alert.subject} {alert.value:g}{unit} (limit {alert.threshold:g}{unit})"
    else:
        what = f"{alert.subject}: no batch for {alert.value:g} s while records wait"
    return f"{alert.state.upper()} {alert.rule} - {what}"
