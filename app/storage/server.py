"""A ClickHouse server (or ClickHouse Cloud) through clickhouse-connect's HTTP interface.

The processor may call one store from several threads (the Spark sink, and in the demo
the terminal view). ClickHouse refuses a second query in an HTTP session while one is running
(SESSION_IS_LOCKED, code 373), and clickhouse-connect gives every client a session unless
told not to. So the client is made without a session, and the store still sends one call
at a time through it: a client object is not meant to be used by two threads at once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlparse


def connection_args(url: str, database: str) -> dict[str, Any]:
    """clickhouse-connect arguments from http(s)://user:password@host:port/db."""
    parsed = urlparse(url)
    secure = parsed.scheme == "https"
    return {
        "host": parsed.hostname,
        "port": parsed.port or (8443 if secure else 8123),
        "username": unquote(parsed.username or "default"),
        "password": unquote(parsed.password or ""),
        "database": parsed.path.strip("/") or database,
        "secure": secure,
    }


class ServerStore:
    def __init__(self, client: Any, database: str) -> None:
        self._client = client
        self.database = database
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, database: str) -> ServerStore:
        import clickhouse_connect

        args = connection_args(url, database)
        # No session: nothing here needs one (no SET, no temporary tables), and without
        # it the server does not lock out a call that overlaps another.
        args["autogenerate_session_id"] = False
        # Connect without a database first: the migrations may have to create it.
        name = args.pop("database")
        bootstrap = clickhouse_connect.get_client(**args)
        bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {name}")
        bootstrap.close()
        return cls(clickhouse_connect.get_client(database=name, **args), name)

    def command(self, sql: str) -> None:
        with self._lock:
            self._client.command(sql)

    def query(self, sql: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._client.query(sql).named_results())

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        dedup_token: str | None = None,
    ) -> None:
        if not rows:
            return
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else {}
        data = [[_as_utc(v) for v in row] for row in rows]
        with self._lock:
            self._client.insert(table, data, column_names=list(columns), settings=settings)

    def insert_arrow(self, table: str, data: Any, dedup_token: str | None = None) -> None:
        if data.num_rows == 0:
            return
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else {}
        with self._lock:
            self._client.insert_arrow(table, data, settings=settings)

    def close(self) -> None:
        with self._lock:
            self._client.close()


def _as_utc(value: Any) -> Any:
    # Naive datetimes from the pipeline are UTC; say so, so the driver does not guess.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
