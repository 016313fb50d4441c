"""ClickHouse behind one interface: a server (clickhouse-connect) or the embedded engine (chDB).

``open_store(url, database)`` picks the backend from the URL scheme. Both run the same
migrations and give inserts the same semantics, deduplication token included.
"""

from __future__ import annotations

from urllib.parse import urlparse

from app.storage.base import ClickHouseStore


def open_store(url: str, database: str) -> ClickHouseStore:
    scheme = urlparse(url).scheme
    if scheme == "chdb":
        from app.storage.embedded import EmbeddedStore

        return EmbeddedStore.from_url(url, database)
    if scheme in ("http", "https"):
        from app.storage.server import ServerStore

        return ServerStore.from_url(url, database)
    raise ValueError(f"CLICKHOUSE_URL: unsupported scheme {scheme!r} (use chdb:// or http(s)://)")


__all__ = ["ClickHouseStore", "open_store"]
