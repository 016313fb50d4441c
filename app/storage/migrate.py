"""python -m app.storage.migrate: bring the ClickHouse schema up to date (safe to run twice)."""

from __future__ import annotations

import sys

from app import settings as settings_module
from app.storage import open_store
from app.storage.migrations import MigrationError, migrate


def main(argv: list[str] | None = None) -> int:
    settings, _ = settings_module.from_cli(
        "Apply the numbered migrations in app/sql to ClickHouse.",
        ["clickhouse"],
        argv,
        prog="python -m app.storage.migrate",
    )
    store = open_store(settings.clickhouse_url, settings.clickhouse_database)
    try:
        applied = migrate(store)
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if applied:
        for m in applied:
            print(f"applied {m.version:03d}_{m.name}")
    else:
        print("schema up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
