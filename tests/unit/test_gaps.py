"""app.processor.gaps: where a checkpoint resumes, and which records Kafka no longer holds."""

from __future__ import annotations

import json

import pytest

from app.processor.gaps import DataLossError, Gap, committed_offsets, find_gaps, resume_over
from app.storage.embedded import EmbeddedStore
from app.storage.migrations import migrate

TOPIC = "clickstream.events"


def write_batch(checkpoint, batch: int, ends: dict[int, int], committed: bool) -> None:
    """Files as Spark writes them: offsets/N before the batch, commits/N after it."""
    (checkpoint / "offsets").mkdir(parents=True, exist_ok=True)
    (checkpoint / "commits").mkdir(parents=True, exist_ok=True)
    source = {TOPIC: {str(p): o for p, o in ends.items()}}
    metadata = {"batchWatermarkMs": 0, "batchTimestampMs": 1764662400000, "conf": {}}
    (checkpoint / "offsets" / str(batch)).write_text(
        f"v1\n{json.dumps(metadata)}\n{json.dumps(source)}"
    )
    if committed:
        (checkpoint / "commits" / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}')


def test_a_query_resumes_from_its_newest_committed_batch(tmp_path):
    assert committed_offsets(tmp_path, TOPIC) == {}  # no commit: nothing can be missing
    write_batch(tmp_path, 0, {0: 10, 1: 12}, committed=True)
    write_batch(tmp_path, 1, {0: 40, 1: 41}, committed=True)
    # Batch 2 was planned but not committed: a restart re-runs it from batch 1's end.
    write_batch(tmp_path, 2, {0: 90, 1: 95}, committed=False)
    assert committed_offsets(tmp_path, TOPIC) == {0: 40, 1: 41}


def test_gaps_are_the_partitions_kafka_has_deleted_past(tmp_path):
    write_batch(tmp_path, 0, {0: 40, 1: 41, 2: 7}, committed=True)
    found = find_gaps(tmp_path, TOPIC, lambda: {0: 40, 1: 50, 2: 0, 3: 99})
    assert found == [Gap(TOPIC, 1, 41, 50)]
    assert str(found[0]) == f"{TOPIC} partition 1: offsets 41 to 49 (9 records)"
    assert find_gaps(tmp_path / "none", TOPIC, lambda: pytest.fail("asked the broker")) == []


def test_an_unrecorded_gap_refuses_and_a_recorded_one_is_resumed_over(tmp_path):
    store = EmbeddedStore(str(tmp_path / "ch"), "clickstream")
    try:
        migrate(store)
        assert resume_over(store, []) is False
        gap = Gap(TOPIC, 1, 41, 50)
        with pytest.raises(DataLossError, match=r"partition 1: offsets 41 to 49 \(9 records\)"):
            resume_over(store, [gap])
        store.insert(
            "data_gaps",
            ("topic", "partition", "first_lost", "first_kept", "lost", "recorded_at"),
            [(TOPIC, 1, 41, 45, 4, "2026-12-01 00:00:00.000")],
        )
        # Recorded at 45; Kafka has deleted up to 50 since: the gap is re-recorded larger.
        assert resume_over(store, [gap]) is True
        rows = store.query("SELECT first_kept, lost FROM data_gaps FINAL")
        assert rows == [{"first_kept": 50, "lost": 9}]
    finally:
        store.close()
