"""The Spark side of the event contract, derived from app/contract.py and nothing else."""

from __future__ import annotations

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
