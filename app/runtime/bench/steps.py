"""Stages c, d and e: the job draining a backlog, and steps of steady input.

c) The job alone: the topic is filled while the query is stopped, then the query starts
   again from its checkpoint and works through the backlog, MAX_OFFSETS_PER_TRIGGER
   records a batch. Its rate is the records it read over the span from the first of
   those batches starting to the last one ending (from pipeline_progress).
d, e) A step: the producer program (PRODUCER_CLIENT=confluent-kafka) paces itself at a
   rate for a while; about once a second a marker event (a page of its own, event_time =
   now) goes in through a producer of the bench's own, and its freshness is the time
   until page_clicks_latest shows it. A step passes when every marker showed, p99
   freshness is within the limit, and the Kafka lag (pipeline_progress.kafka_lag, the
   worst partition) at the end of the step is no higher than at its start plus one
   trigger interval's worth of input.
"""

from __future__ import annotations

import gc
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.contract import encode, format_event_time
from app.processor import job
from app.runtime.bench.context import Bench
from app.runtime.bench.procs import last_json_line
from app.runtime.bench.producers import send_events

STEADY_CLIENT = "confluent-kafka"
# How long a marker may take to show after its step before it counts as missing.
MARKER_TIMEOUT = 60.0
POLL_SECONDS = 0.1
# The producer program needs a moment to start (imports, the traffic model's pools).
PRODUCER_START_TIMEOUT = 120.0
PROGRESS_EVERY = 20.0


def _sql_time(moment: datetime) -> str:
    return f"toDateTime64('{moment:%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC')"


def batches_since(store, since: datetime, until: datetime | None = None) -> list[dict]:
    """pipeline_progress rows of the batches that started in [since, until)."""
    until_sql = f"AND batch_time < {_sql_time(until)} " if until else ""
    return store.query(
        "SELECT batch_id, batch_time, num_input_rows AS rows, batch_duration_ms AS ms, "
        "kafka_lag AS lag FROM pipeline_progress FINAL "
        f"WHERE batch_time >= {_sql_time(since)} {until_sql}ORDER BY batch_time"
    )


def catch_up(bench: Bench, store, pipeline: job.Pipeline, what: str) -> None:
    """Wait until the job has read everything in the topic, saying where it is meanwhile."""
    [query] = pipeline.queries
    failure: list[BaseException] = []

    def wait() -> None:
        try:
            query.processAllAvailable()
        except BaseException as exc:  # handed to the main thread
            failure.append(exc)

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    since = datetime.now(UTC)
    while waiter.is_alive():
        waiter.join(PROGRESS_EVERY)
        if waiter.is_alive():
            read = sum(b["rows"] for b in batches_since(store, since))
            bench.say(f"  {what}: {read:,} records read so far")
    if failure:
        raise RuntimeError(f"the query failed: {failure[0]}")


def drain(bench: Bench, spark, store, events: Path, count: int) -> tuple[job.Pipeline, dict]:
    """Stage c. Returns the running pipeline (the steps use it) and the drain's figures."""
    settings = bench.settings
    warm = min(count // 10, 10_000)
    pipeline = job.start(spark, settings, store)
    # The first batches pay for code generation and the JIT: keep them out of the rate.
    send_events(bench, STEADY_CLIENT, events, settings.kafka_topic, limit=warm)
    catch_up(bench, store, pipeline, "warm-up")
    pipeline.stop()
    filled = send_events(bench, STEADY_CLIENT, events, settings.kafka_topic, skip=warm)
    bench.say(f"  topic filled: {filled['sent']:,} events; starting the job again")
    restarted = datetime.now(UTC)
    pipeline = job.start(spark, settings, store)
    catch_up(bench, store, pipeline, "draining")
    batches = [b for b in batches_since(store, restarted) if b["rows"]]
    if not batches:
        raise RuntimeError("the job read nothing from the backlog")
    last = batches[-1]
    span = (last["batch_time"] - batches[0]["batch_time"]).total_seconds() + last["ms"] / 1000
    rows = sum(b["rows"] for b in batches)
    result = {
        "events": rows,
        "batches": len(batches),
        "seconds": round(span, 2),
        "events_per_second": round(rows / span, 1),
        "max_offsets_per_trigger": settings.max_offsets_per_trigger,
    }
    bench.say(
        f"  drained {rows:,} events in {len(batches)} batches, {span:.1f} s: "
        f"{result['events_per_second']:,.0f} events/s"
    )
    return pipeline, result


class Markers:
    """Marker events on pages of their own, sent with a producer of the bench's own."""

    def __init__(self, bench: Bench, store) -> None:
        from confluent_kafka import Producer

        self.store, self.topic = store, bench.settings.kafka_topic
        self.producer: Producer | None = Producer(
            {"bootstrap.servers": bench.bootstrap, "acks": "all", "linger.ms": 0}
        )
        # Irregular gaps, so the markers never fall into step with the trigger.
        self.rng = random.Random(bench.settings.producer_seed)

    def send(self) -> str:
        page = f"/bench/marker-{uuid.uuid4().hex[:12]}"
        event = {
            "event_id": str(uuid.uuid4()),
            "schema_version": 1,
            "event_time": format_event_time(datetime.now(UTC)),
            "user_id": "bench",
            "session_id": "bench",
            "page_url": page,
            "event_type": "page_view",
            "referrer": None,
            "user_agent": "bench",
            "device": "desktop",
            "country": "US",
        }
        self.producer.produce(self.topic, encode(event), b"bench")
        self.producer.flush(30)
        return page

    def visible(self, pages: list[str]) -> set[str]:
        quoted = ", ".join(f"'{p}'" for p in pages)
        rows = self.store.query(
            f"SELECT DISTINCT page_url FROM page_clicks_latest WHERE page_url IN ({quoted})"
        )
        return {r["page_url"] for r in rows}

    def measure(self, seconds: float, tick: Callable[[list[float]], None]) -> tuple[list, int]:
        """Send markers about once a second for `seconds`; their freshness, and how many
        never showed (counted at the time waited for them, a lower bound)."""
        sent: dict[str, float] = {}
        delays: list[float] = []
        started = time.monotonic()
        stop_sending = started + seconds
        next_send = started + self.rng.uniform(0.0, 1.0)
        while True:
            now = time.monotonic()
            if now < stop_sending and now >= next_send:
                page = self.send()
                sent[page] = now  # event_time is this moment too
                next_send = now + self.rng.uniform(0.5, 1.5)
            if sent:
                for page in self.visible(list(sent)):
                    delays.append(time.monotonic() - sent.pop(page))
            tick(delays)
            if now >= stop_sending and (not sent or now > stop_sending + MARKER_TIMEOUT):
                break
            time.sleep(POLL_SECONDS)
        missing = [time.monotonic() - at for at in sent.values()]
        return delays + missing, len(missing)

    def close(self) -> None:
        """Flush and let the client go now, before the broker stops under it."""
        if self.producer is not None:
            self.producer.flush(30)
            self.producer = None
            gc.collect()


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]


def step(
    bench: Bench, store, pipeline: job.Pipeline, markers: Markers, rate: float, seconds: float
) -> dict:
    settings = bench.settings
    label = f"{rate:.0f}-{time.monotonic():.0f}"
    log = bench.logs / f"producer-step-{label}.log"
    # A little longer than the step: the markers start once the producer is sending.
    env = bench.producer_env(STEADY_CLIENT, rate, seconds + 5, settings.kafka_topic)
    producer = bench.children.python("app.producer", [], log, env)
    deadline = time.monotonic() + PRODUCER_START_TIMEOUT
    while "generated=" not in log.read_text(errors="replace"):
        if producer.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the producer did not start sending; see {log}")
        time.sleep(0.2)
    began = datetime.now(UTC)
    said = [time.monotonic()]

    def tick(delays: list[float]) -> None:
        if time.monotonic() - said[0] >= PROGRESS_EVERY:
            said[0] = time.monotonic()
            last = f", last {delays[-1]:.2f} s" if delays else ""
            bench.say(f"  {rate:,.0f} events/s: {len(delays)} markers seen{last}")

    delays, missing = markers.measure(seconds, tick)
    ended = began + timedelta(seconds=seconds)  # the markers may have been waited for longer
    peak = bench.children.reap(producer, seconds + 300)
    summary = last_json_line(log)
    batches = batches_since(store, began, ended)
    quarter = max(len(batches) // 4, 1)
    lag_start = max((b["lag"] for b in batches[:quarter]), default=0)
    lag_end = max((b["lag"] for b in batches[-quarter:]), default=0)
    lag_grew = lag_end > lag_start + rate * settings.trigger_interval
    p99 = percentile(delays, 99)
    result = {
        "target_events_per_second": round(rate, 1),
        "events_per_second": summary["events_per_second"],
        "seconds": seconds,
        "markers": len(delays),
        "markers_missing": missing,
        "freshness_p50_s": round(percentile(delays, 50), 2),
        "freshness_p95_s": round(percentile(delays, 95), 2),
        "freshness_p99_s": round(p99, 2),
        "freshness_max_s": round(max(delays), 2),
        "batches": len(batches),
        "lag_start": lag_start,
        "lag_end": lag_end,
        "lag_grew": lag_grew,
        "passed": not missing and not lag_grew and p99 <= bench.freshness_limit,
        "producer_peak_rss_mib": peak,
    }
    bench.say(
        f"  {rate:,.0f} events/s (sent {result['events_per_second']:,.0f}): freshness p50/p95/p99 "
        f"{result['freshness_p50_s']:.2f}/{result['freshness_p95_s']:.2f}/{p99:.2f} s, "
        f"lag {lag_start:,} -> {lag_end:,}: {'pass' if result['passed'] else 'FAIL'}"
    )
    catch_up(bench, store, pipeline, "catching up")
    return result


def search(
    bench: Bench, run_step: Callable[[float], dict], capacity: float, known: list[dict], steps: int
) -> dict:
    """Stage d: the highest rate that passes, from the drain's capacity downwards or upwards,
    then by halving the gap between the best pass and the lowest failure.

    The steps of stage e count as known points, so the search never contradicts them.
    """
    tried: list[dict] = []

    def best() -> tuple[dict | None, dict | None]:
        everything = known + tried
        passes = [s for s in everything if s["passed"]]
        fails = [s for s in everything if not s["passed"]]
        return (
            max(passes, key=lambda s: s["target_events_per_second"], default=None),
            min(fails, key=lambda s: s["target_events_per_second"], default=None),
        )

    rate = capacity
    for _ in range(steps):
        passing, failing = best()
        low = passing["target_events_per_second"] if passing else 0.0
        high = failing["target_events_per_second"] if failing else math.inf
        if passing and passing["events_per_second"] < 0.95 * low:
            break  # the producer could not keep up: a higher rate cannot be offered
        if high < math.inf and low > 0 and high <= 1.1 * low:
            break  # found within 10 %
        if not low < rate < high:
            if high == math.inf:
                rate = low * 1.5
            elif low == 0:
                rate = high / 2
            else:
                rate = (low + high) / 2
        rate = max(round(rate, -2), 100.0)
        if any(s["target_events_per_second"] == rate for s in known + tried):
            break
        bench.say(f"  search: trying {rate:,.0f} events/s (passes so far up to {low:,.0f})")
        tried.append(run_step(rate))
    passing, _ = best()
    note = ""
    if passing is None and bench.settings.trigger_interval >= bench.freshness_limit:
        note = (
            f"TRIGGER_INTERVAL={bench.settings.trigger_interval:g}s: an event can wait that long "
            "for its batch to start, on top of the batch's own time, so p99 freshness <= "
            f"{bench.freshness_limit:g} s is out of reach at any rate; try a shorter interval"
        )
    return {
        "events_per_second": passing["events_per_second"] if passing else 0.0,
        "target_events_per_second": passing["target_events_per_second"] if passing else 0.0,
        "found": passing is not None,
        "capacity_events_per_second": capacity,
        "freshness_limit_s": bench.freshness_limit,
        "steps": tried,
        "note": note,
    }
