"""How much disk the data volume needs: rate x bytes per event x days, per store.

Two figures per event, each measured by tests/integration/test_sizing.py, which fails
if a figure here drifts from the real engine's by more than 15 %:

- Kafka: one event on the broker's disk (its record in an lz4 batch, the batch header
  included, the index files left out), sent by the producer program at the appliance's
  default 200 events/s (small batches, so little compression).
- ClickHouse: one event in `events` (compressed, merged), with the model's traffic.

The tables fed per minute or per session (counts, unique visitors, funnel, sessions)
grow with time rather than events and are small beside these; they, the checkpoints
and Metabase's Postgres are the allowance. Merges need free room as large as the parts
they merge, hence the headroom. The README's sizing section is this module's output
(`python -m app.sizing`); a test keeps the two equal.
"""

from __future__ import annotations

import argparse

KAFKA_BYTES_PER_EVENT = 347
CLICKHOUSE_EVENTS_BYTES_PER_EVENT = 97
# Per-minute and per-session tables, checkpoints, Metabase's Postgres (GiB).
ALLOWANCE_GIB = 30
HEADROOM = 0.2
GIB = 1024**3
DAY = 86_400


def kafka_gib(rate: float, retention_days: float, cap_gib: float) -> float:
    """The topic once it has run for its retention, or its size cap if that is smaller."""
    return min(rate * retention_days * DAY * KAFKA_BYTES_PER_EVENT / GIB, cap_gib)


def kafka_days(rate: float, retention_days: float, cap_gib: float) -> float:
    """Days of events the topic keeps: its retention, or fewer when the cap comes first."""
    return min(retention_days, cap_gib * GIB / (rate * DAY * KAFKA_BYTES_PER_EVENT))


def events_gib(rate: float, ttl_days: float) -> float:
    return rate * ttl_days * DAY * CLICKHOUSE_EVENTS_BYTES_PER_EVENT / GIB


def data_volume_gib(rate: float, retention_days: float, cap_gib: float, ttl_days: float) -> float:
    used = kafka_gib(rate, retention_days, cap_gib) + events_gib(rate, ttl_days) + ALLOWANCE_GIB
    return used * (1 + HEADROOM)


def table(
    rates: tuple[int, ...] = (200, 500, 1_000),
    retention_days: float = 7,
    cap_gib: float = 42,
    ttl_days: float = 90,
) -> str:
    """The README's sizing table, one row per rate."""
    lines = [
        f"| events/s | Kafka ({retention_days:g} days, cap {cap_gib:g} GiB) | days Kafka keeps "
        f"| `events` ({ttl_days:g} days) | data volume (+{ALLOWANCE_GIB} GiB, +{HEADROOM:.0%}) |",
        "|---|---|---|---|---|",
    ]
    for rate in rates:
        lines.append(
            f"| {rate:,} | {kafka_gib(rate, retention_days, cap_gib):,.0f} GiB "
            f"| {kafka_days(rate, retention_days, cap_gib):.1f} "
            f"| {events_gib(rate, ttl_days):,.0f} GiB "
            f"| {data_volume_gib(rate, retention_days, cap_gib, ttl_days):,.0f} GiB |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.sizing",
        description="The data volume's size: rate x bytes per event x days, per store.",
    )
    parser.add_argument("--kafka-days", type=float, default=7, help="retention.ms in days")
    parser.add_argument(
        "--kafka-cap-gib", type=float, default=42, help="retention.bytes x partitions, GiB"
    )
    parser.add_argument("--events-ttl-days", type=float, default=90, help="EVENTS_TTL_DAYS")
    parser.add_argument("rates", nargs="*", type=int, default=[200, 500, 1_000])
    args = parser.parse_args(argv)
    print(table(tuple(args.rates), args.kafka_days, args.kafka_cap_gib, args.events_ttl_days))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
