"""What the pipeline needs from ClickHouse, whichever engine answers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol


class ClickHouseStore(Protocol):
    database: str

    def command(self, sql: str) -> None:
        """Run a statement that returns nothing (DDL)."""

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Rows of a SELECT as dicts, with Python values (int, float, str, datetime)."""

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        dedup_token: str | None = None,
    ) -> None:
        """One INSERT of all rows. The same dedup_token twice inserts the rows only once."""

    def insert_arrow(self, table: str, data: Any, dedup_token: str | None = None) -> None:
        """One INSERT of a pyarrow Table (columns by name), with the same token rule.

        The path for many rows: no Python object per value on the way."""

    def close(self) -> None: ...


def to_clickhouse_text(value: Any) -> Any:
    """JSON-friendly form of a value for JSONEachRow.

    Datetimes become UTC text with milliseconds; every DateTime column of ours is declared
    with the 'UTC' time zone, so the text means the same instant on any server. A naive
    datetime is taken to be UTC already.
    """
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return value


def quote_string(text: str) -> str:
    """A ClickHouse single-quoted string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
