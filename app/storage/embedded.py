"""The embedded ClickHouse engine (chDB), on disk: the default where no server is configured.

chDB runs ClickHouse inside this process and takes an exclusive lock on its folder, so
one process at a time owns the data: the processor while it runs (the demo's terminal
view runs in the same process), tests and tools after it has stopped.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from app.storage.base import quote_string, to_clickhouse_text


class EmbeddedStore:
    def __init__(self, path: str, database: str) -> None:
        from chdb.session import Session  # imported here: servers never need chDB

        Path(path).mkdir(parents=True, exist_ok=True)
        self.path = path
        self.database = database
        # The Spark sink and the progress listener call in from different threads.
        self._lock = threading.Lock()
        self._session = Session(path)
        self._session.query(f"CREATE DATABASE IF NOT EXISTS {database}")
        self._session.query(f"USE {database}")

    @classmethod
    def from_url(cls, url: str, database: str) -> EmbeddedStore:
        parsed = urlparse(url)
        return cls(parsed.netloc + parsed.path, database)

    def command(self, sql: str) -> None:
        with self._lock:
            self._session.query(sql)

    def query(self, sql: str) -> list[dict[str, Any]]:
        with self._lock:
            table = self._session.query(sql, "ArrowTable")
        return table.to_pylist()

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

    def close(self) -> None:
        with self._lock:
            self._session.close()
