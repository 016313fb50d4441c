"""Records Kafka deleted before the job read them: find the gap, record it, resume over it.

The query stops on data loss by design (failOnDataLoss): when the processor was down
longer than the topic's retention, the records after its checkpoint are gone, and every
start fails again. Wiping the checkpoint would restart the counts from scratch and, with
the tables kept, refuse to start (check_checkpoint_matches_table). Instead:

    python -m app.processor.gaps            # what is lost, per partition (exit 3 if any)
    python -m app.processor.gaps --record   # write it to data_gaps: the gap is accepted

A processor that finds a gap refuses to start until it is recorded; once it is, it
resumes from the topic's earliest offsets for that one run (failOnDataLoss off) and
records the gap again with what was lost by then. Every later start is strict again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app import settings as settings_module
from app.backup import batch_ids
from app.lifecycle import setup_logging
from app.settings import Settings
from app.storage import ClickHouseStore, open_store

log = logging.getLogger("app.processor.gaps")

GAP_COLUMNS = ("topic", "partition", "first_lost", "first_kept", "lost", "recorded_at")


class DataLossError(RuntimeError):
    """Records after the checkpoint are gone from Kafka, and nobody has recorded the gap."""


@dataclass(frozen=True)
class Gap:
    topic: str
    partition: int
    first_lost: int  # the first offset the job never read
    first_kept: int  # the topic's earliest offset now: where the job resumes

    @property
    def lost(self) -> int:
        return self.first_kept - self.first_lost

    def __str__(self) -> str:
        return (
            f"{self.topic} partition {self.partition}: offsets {self.first_lost} to "
            f"{self.first_kept - 1} ({self.lost} records)"
        )


def committed_offsets(checkpoint: Path, topic: str) -> dict[int, int]:
    """Where the query resumes in each partition: the end of its newest committed batch.

    Spark writes offsets/N (the batch's end offsets: a "v1" line, the batch's metadata,
    then one JSON line per source) before running batch N, and commits/N after it; a
    restart re-runs an uncommitted batch from the committed one's end. No commit yet: the
    query starts from STARTING_OFFSETS, and nothing can be missing.
    """
    newest = max(batch_ids(checkpoint / "commits"), default=None)
    if newest is None:
        return {}
    lines = (checkpoint / "offsets" / str(newest)).read_text().splitlines()
    for line in lines[2:]:
        source = json.loads(line)
        if isinstance(source, dict) and topic in source:
            return {int(p): int(o) for p, o in source[topic].items()}
    return {}


def earliest_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers.split(","))
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        found = consumer.beginning_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: offset for tp, offset in found.items()}
    finally:
        consumer.close()


def find_gaps(
    checkpoint: Path,
    topic: str,
    earliest: Callable[[], dict[int, int]],
) -> list[Gap]:
    """Partitions whose earliest offset has passed where the query resumes."""
    resume_at = committed_offsets(checkpoint, topic)
    if not resume_at:
        return []
    now = earliest()
    return [
        Gap(topic, partition, resume_at[partition], now[partition])
        for partition in sorted(resume_at)
        if partition in now and now[partition] > resume_at[partition]
    ]


def recorded(store: ClickHouseStore, gaps: list[Gap]) -> list[Gap]:
    """The gaps data_gaps already holds (by topic, partition and first lost offset)."""
    rows = store.query("SELECT DISTINCT topic, partition, first_lost FROM data_gaps")
    known = {(r["topic"], int(r["partition"]), int(r["first_lost"])) for r in rows}
    return [g for g in gaps if (g.topic, g.partition, g.first_lost) in known]


def record(store: ClickHouseStore, gaps: list[Gap]) -> None:
    """Write the gaps; recording one again (more lost since) replaces its row."""
    now = datetime.now(UTC)
    store.insert(
        "data_gaps",
        GAP_COLUMNS,
        [(g.topic, g.partition, g.first_lost, g.first_kept, g.lost, now) for g in gaps],
    )


def resume_over(store: ClickHouseStore, gaps: list[Gap]) -> bool:
    """Whether this run must tolerate lost records; refuses gaps nobody has recorded."""
    if not gaps:
        return False
    known = recorded(store, gaps)
    missing = [g for g in gaps if g not in known]
    if missing:
        raise DataLossError(
            "records after the checkpoint were deleted from Kafka (retention) before the "
            "job read them: "
            + "; ".join(str(g) for g in missing)
            + ". The counts would silently miss them. To resume from the earliest records "
            "Kafka still holds, record the gap first: python -m app.processor.gaps --record "
            "(README, Operations: down longer than Kafka's retention)."
        )
    record(store, gaps)
    for gap in gaps:
        log.warning("resuming over a recorded gap: %s", gap)
    return True


def main(argv: list[str] | None = None) -> int:
    settings, args = settings_module.from_cli(
        "Show (and with --record, accept) the records Kafka deleted before the job read them.",
        ["kafka", "clickhouse", "processor"],
        argv,
        extra=lambda p: p.add_argument(
            "--record", action="store_true", help="write the gaps to data_gaps (accept them)"
        ),
        prog="python -m app.processor.gaps",
    )
    setup_logging(fmt="%(message)s")
    return run(settings, record_them=args.record)


def run(settings: Settings, record_them: bool) -> int:
    from app.processor.job import QUERY_NAME

    checkpoint = Path(settings.checkpoint_dir) / QUERY_NAME
    gaps = find_gaps(
        checkpoint,
        settings.kafka_topic,
        lambda: earliest_offsets(settings.kafka_bootstrap_servers, settings.kafka_topic),
    )
    if not gaps:
        print(f"no gap: Kafka still holds every record after the checkpoint at {checkpoint}")
        return 0
    for gap in gaps:
        print(f"lost: {gap}")
    if not record_them:
        print("nothing recorded; with --record the processor resumes over these gaps")
        return 3
    store = open_store(settings.clickhouse_url, settings.clickhouse_database)
    try:
        from app.storage.migrations import migrate

        migrate(store)
        record(store, gaps)
    finally:
        store.close()
    print(f"recorded {len(gaps)} gap(s) in data_gaps: the processor resumes over them")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
