"""The migration runner: applies app/sql/NNN_*.sql once each, in order, and records them.

Used alike by the processor at start-up, `make demo`, the tests and the clickhouse role
(`python -m app.storage.migrate`). A migration is recorded with a checksum; editing one
after it was applied is refused, because the database would no longer match the file.
Statements in a file are separated by a semicolon at the end of a line.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from app.storage.base import ClickHouseStore, quote_string

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY version
"""


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        parts = re.split(r";\s*$", self.sql, flags=re.MULTILINE)
        return [p.strip() for p in parts if _has_code(p)]


def _has_code(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    found = []
    for path in sorted(sql_dir.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migrations are named NNN_snake_case.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number in {sql_dir}")
    return found


def migrate(store: ClickHouseStore, sql_dir: Path = SQL_DIR) -> list[Migration]:
    """Apply what is not yet applied; return what was applied now (empty when up to date)."""
    store.command(LEDGER_DDL)
    applied = {
        row["version"]: row["checksum"]
        for row in store.query("SELECT version, checksum FROM schema_migrations")
    }
    done = []
    for migration in discover(sql_dir):
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:03d}_{migration.name} was changed after it "
                    "was applied; add a new numbered migration instead"
                )
            continue
        for statement in migration.statements():
            store.command(statement)
        store.command(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES "
            f"({migration.version}, {quote_string(migration.name)}, "
            f"{quote_string(migration.checksum)})"
        )
        done.append(migration)
    return done
