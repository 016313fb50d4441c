"""Splitting a collected batch in the driver (app/processor/batch.py), on Arrow tables."""

from __future__ import annotations

import pyarrow as pa

from app.processor import batch


def collected(reasons: list[str | None]) -> pa.Table:
    return pa.table(
        {
            "kafka_offset": pa.array(range(len(reasons)), pa.int64()),
            "reason": pa.array(reasons, pa.string()),
        }
    )


def test_split_keeps_order_on_each_side():
    valid, rejected = batch.split(collected([None, "bad_json", None, "null_user_id", None]))
    assert valid["kafka_offset"].to_pylist() == [0, 2, 4]
    assert rejected["kafka_offset"].to_pylist() == [1, 3]
    assert rejected["reason"].to_pylist() == ["bad_json", "null_user_id"]


def test_a_batch_without_rejects_is_not_copied():
    # The batch is the driver's largest allocation (up to MAX_OFFSETS_PER_TRIGGER rows);
    # a filtered copy of all of it would double the driver's memory for nothing.
    rows = collected([None] * 1000)
    valid, rejected = batch.split(rows)
    assert valid is rows
    assert rejected.num_rows == 0
    assert rejected.schema == rows.schema


def test_a_batch_of_only_rejects_has_no_valid_rows():
    valid, rejected = batch.split(collected(["bad_json", "bad_json"]))
    assert valid.num_rows == 0
    assert rejected["kafka_offset"].to_pylist() == [0, 1]
