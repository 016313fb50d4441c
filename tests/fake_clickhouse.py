"""A stand-in for clickhouse-connect's HTTP client, for tests of the server path.

No ClickHouse server runs in the tests, so this fake copies the two server behaviours
the pipeline must survive, and records what it is handed:

* One client is one HTTP session. ClickHouse refuses a second query in a session while
  one is still running (code 373, SESSION_IS_LOCKED); the fake raises the same error when
  a call enters while another is in progress. ``call_seconds`` keeps every call in
  progress that long, so overlapping calls from several threads do meet.
* A Python None for a column that is not Nullable cannot be inserted: clickhouse-connect
  refuses it before anything is sent (DataError for strings, TypeError or AttributeError
  for numbers and times). The fake raises DataError, with the driver's message, for the
  columns it is told are not Nullable: a table -> column names mapping, which
  ``non_nullable_columns`` reads from the real engine after the migrations.

Use it as ``ServerStore(FakeClickHouseClient(non_nullable_columns(store)), "clickstream")``
with the ``store`` fixture, so the fake knows the schema app/sql creates today.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from clickhouse_connect.driver.exceptions import DatabaseError, DataError

from app.storage.base import ClickHouseStore


def non_nullable_columns(store: ClickHouseStore) -> dict[str, frozenset[str]]:
    """Table -> the columns that are not Nullable, in a migrated store (chDB in tests)."""
    rows = store.query(
        "SELECT table, name FROM system.columns "
        "WHERE database = currentDatabase() AND type NOT LIKE 'Nullable(%' "
        "AND type NOT LIKE 'LowCardinality(Nullable(%' AND table IN "
        "(SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine NOT LIKE '%View') ORDER BY table, name"
    )
    tables: dict[str, set[str]] = {}
    for row in rows:
        tables.setdefault(row["table"], set()).add(row["name"])
    return {table: frozenset(names) for table, names in tables.items()}


class FakeQueryResult:
    def __init__(self, rows: Sequence[dict[str, Any]]) -> None:
        self._rows = rows

    def named_results(self):
        yield from (dict(row) for row in self._rows)


class FakeClickHouseClient:
    def __init__(
        self,
        non_nullable: Mapping[str, Collection[str]] | None = None,
        *,
        call_seconds: float = 0.0,
        query_rows: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.non_nullable = {t: frozenset(c) for t, c in (non_nullable or {}).items()}
        self.call_seconds = call_seconds
        self.query_rows = list(query_rows)
        self.inserts: list[tuple[str, list[list[Any]], list[str], dict[str, Any]]] = []
        self.queries: list[str] = []
        self.commands: list[str] = []
        self.closed = 0
        self._guard = threading.Lock()  # protects the fake's own books, not the caller
        self._in_progress = False

    def _enter(self) -> None:
        with self._guard:
            if self._in_progress:
                raise DatabaseError(
                    "HTTPDriver received ClickHouse error code 373\n"
                    "Code: 373. DB::Exception: Session is locked by a concurrent client. "
                    "(SESSION_IS_LOCKED)"
                )
            self._in_progress = True

    def _leave(self) -> None:
        # The call is recorded; the server is still working on it for call_seconds.
        time.sleep(self.call_seconds)
        with self._guard:
            self._in_progress = False

    def command(self, sql: str) -> None:
        self._enter()
        try:
            with self._guard:
                self.commands.append(sql)
        finally:
            self._leave()

    def query(self, sql: str) -> FakeQueryResult:
        self._enter()
        try:
            with self._guard:
                self.queries.append(sql)
            return FakeQueryResult(self.query_rows)
        finally:
            self._leave()

    def insert(
        self,
        table: str,
        data: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        settings: dict[str, Any],
    ) -> None:
        self._enter()
        try:
            # Checked before anything is sent: a refused insert inserts no row.
            required = self.non_nullable.get(table, frozenset())
            for row in data:
                for name, value in zip(column_names, row, strict=True):
                    if value is None and name in required:
                        # clickhouse-connect 1.12's own words for a String column
                        raise DataError(
                            f"Invalid None value in non-Nullable column, column name: `{name}`"
                        )
            with self._guard:
                self.inserts.append((table, [list(r) for r in data], list(column_names), settings))
        finally:
            self._leave()

    def insert_arrow(self, table: str, arrow_table: Any, settings: dict[str, Any]) -> None:
        # clickhouse-connect sends the Arrow stream as it is; the server refuses a NULL in
        # a non-Nullable column the same way.
        self.insert(
            table,
            [list(r.values()) for r in arrow_table.to_pylist()],
            arrow_table.column_names,
            settings,
        )

    def close(self) -> None:
        self._enter()
        try:
            with self._guard:
                self.closed += 1
        finally:
            self._leave()
