"""The Spark side of the event contract, derived from app/contract.py and nothing else."""

from __future__ import annotations

from itertools import product

from pyspark.sql import types as T

from app.contract import FIELDS

# How a contract type travels in JSON, and which JSON types (as Spark's schema_of_variant
# names them) are acceptable for it. event_time is text on the wire, parsed afterwards.
SPARK_TYPES = {"string": T.StringType(), "int": T.LongType(), "timestamp": T.StringType()}
JSON_TYPES = {
    "string": ("STRING",),
    "int": ("TINYINT", "SMALLINT", "INT", "BIGINT"),
    "timestamp": ("STRING",),
}

# RFC 3339 with an offset (Z or +hh:mm); milliseconds as the contract says, seconds tolerated.
EVENT_TIME_PATTERN = "yyyy-MM-dd'T'HH:mm:ss[.SSS]XXX"


def event_schema() -> T.StructType:
    """The explicit schema: the typed fields read from each parsed message."""
    return T.StructType([T.StructField(f.name, SPARK_TYPES[f.kind], True) for f in FIELDS])


def conforming_shapes() -> frozenset[str]:
    """Every shape (schema_of_variant of the whole message) whose fields all type-check.

    A message is conforming when each required field is present with an acceptable JSON
    type and each optional field is absent, null (VOID) or of an acceptable type, and it
    has no other field. For such a message every type check passes, so the job can skip
    them with one set lookup and run them field by field only for the rest. Spark writes
    an object's shape with its keys sorted, as `OBJECT<a: STRING, b: BIGINT>`.
    (Seven optional fields give a few thousand shapes: a hash set, not a scan.)
    """
    options = []
    for field in FIELDS:
        types = [f"{field.name}: {json_type}" for json_type in JSON_TYPES[field.kind]]
        options.append(types if field.required else [None, f"{field.name}: VOID", *types])
    shapes = set()
    for choice in product(*options):
        present = sorted((entry for entry in choice if entry is not None), key=_key)
        shapes.add("OBJECT<" + ", ".join(present) + ">")
    return frozenset(shapes)


def _key(entry: str) -> bytes:
    # Variant objects keep their keys in byte order; so does the shape Spark writes.
    return entry.split(":", 1)[0].encode()
