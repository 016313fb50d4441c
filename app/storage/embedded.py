"""The embedded ClickHouse engine (chDB), on disk: the default where no server is configured.

chDB runs ClickHouse inside this process and takes an exclusive lock on its folder, so
one process at a time owns the data: the processor while it runs (the demo's terminal
view runs in the same process), tests and tools after it has stopped.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from app.storage.base import quote_string, to_clickhouse_text


class EmbeddedStore:
    def __init__(self, path: str, database: str, config_file: str | None = None) -> None:
        from chdb.session import Session  # imported here: servers never need chDB

        Path(path).mkdir(parents=True, exist_ok=True)
        self.path = path
        self.database = database
        # The Spark sink and the demo's terminal view call in from different threads.
        self._lock = threading.Lock()
        # A server configuration file (what clickhouse-local reads with --config-file):
        # the backup tests give the engine the backups disk the clickhouse role renders.
        connection = path if config_file is None else f"file:{path}?config-file={config_file}"
        self._session = Session(connection)
        self._session.query(f"CREATE DATABASE IF NOT EXISTS {database}")
        self._session.query(f"USE {database}")
        # Text forms of DateTime columns without a zone of their own then mean UTC.
        self._session.query("SET session_timezone = 'UTC'")

    @classmethod
    def from_url(cls, url: str, database: str) -> EmbeddedStore:
        parsed = urlparse(url)
        return cls(parsed.netloc + parsed.path, database)

    def command(self, sql: str) -> None:
        with self._lock:
            self._session.query(sql)

    def query(self, sql: str) -> list[dict[str, Any]]:
        with self._lock:
            result = self._session.query(sql, "JSONCompact")
        body = result.bytes()
        if not body:
            return []
        payload = json.loads(body)
        converters = [_converter(column["type"]) for column in payload["meta"]]
        names = [column["name"] for column in payload["meta"]]
        return [
            {
                name: convert(value)
                for name, convert, value in zip(names, converters, row, strict=True)
            }
            for row in payload["data"]
        ]

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        dedup_token: str | None = None,
    ) -> None:
        if not rows:
            return
        lines = "\n".join(
            json.dumps({c: to_clickhouse_text(v) for c, v in zip(columns, row, strict=True)})
            for row in rows
        )
        settings = ""
        if dedup_token is not None:
            settings = f" SETTINGS insert_deduplication_token = {quote_string(dedup_token)}"
        column_list = ", ".join(columns)
        with self._lock:
            self._session.query(
                f"INSERT INTO {table} ({column_list}){settings} FORMAT JSONEachRow\n{lines}"
            )

    def insert_arrow(self, table: str, data: Any, dedup_token: str | None = None) -> None:
        if data.num_rows == 0:
            return
        import pyarrow.ipc

        settings = ""
        if dedup_token is not None:
            settings = f" SETTINGS insert_deduplication_token = {quote_string(dedup_token)}"
        columns = ", ".join(data.column_names)
        # chDB reads a file in Arrow's stream format as the server would read the same
        # bytes sent over HTTP; a folder of our own, gone after the insert.
        with tempfile.TemporaryDirectory(prefix="arrow-insert-") as folder:
            path = Path(folder, "rows.arrows")
            with pyarrow.ipc.new_stream(str(path), data.schema) as writer:
                writer.write_table(data)
            with self._lock:
                self._session.query(
                    f"INSERT INTO {table} ({columns}){settings} "
                    f"SELECT {columns} FROM file({quote_string(str(path))}, 'ArrowStream')"
                )

    def close(self) -> None:
        with self._lock:
            self._session.close()


def _converter(clickhouse_type: str) -> Callable[[Any], Any]:
    """Python values from JSON text, by ClickHouse type, as clickhouse-connect returns them."""
    base = clickhouse_type
    for wrapper in ("Nullable(", "LowCardinality("):
        if base.startswith(wrapper):
            base = base[len(wrapper) : -1]

    def keep_null(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
        return lambda value: None if value is None else convert(value)

    if base.startswith("DateTime"):
        return keep_null(lambda text: datetime.fromisoformat(text).replace(tzinfo=UTC))
    if base.startswith("Date"):
        return keep_null(date.fromisoformat)
    if re.fullmatch(r"U?Int\d+", base):
        return keep_null(int)
    if base.startswith("Float"):
        return keep_null(float)
    return lambda value: value
