"""Metabase's database through make backup / make restore, on a real PostgreSQL server.

app/backup.py's MetabaseDb runs pg_dump and pg_restore with exactly the arguments the
appliance runs inside its Postgres container; here the prefix is this machine's
PostgreSQL 15 (Debian's postgresql-15, which .ci/run installs) instead of `docker exec`,
against a server started for the test in a temporary folder, listening on a Unix socket
only. (The appliance runs PostgreSQL 16: both tools there come from the same server, as
here.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.backup import METABASE_PART, MetabaseDb

PG_BIN = Path("/usr/lib/postgresql/15/bin")
USER = "metabase"
DATABASE = "metabase"


def _as_postgres(argv: list[str]) -> list[str]:
    # The server refuses to run as root; tests may run as root (CI does).
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture
def postgres() -> Iterator[dict[str, str]]:
    if not (PG_BIN / "initdb").is_file():
        pytest.fail(f"PostgreSQL 15 missing at {PG_BIN}: apt-get install postgresql-15")
    # Not under pytest's tmp_path: its parents are root's alone, and the server runs as
    # the postgres user when the tests run as root.
    home = Path(tempfile.mkdtemp(prefix="pg-backup-"))
    data = home / "data"
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
    subprocess.run(
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", USER, "--auth=trust"]),
        check=True,
        capture_output=True,
    )
    options = f"-k {home} -c listen_addresses='' -p 5432"
    pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-w"]
    subprocess.run(
        _as_postgres([*pg_ctl, "-l", str(home / "log"), "start"]), check=True, capture_output=True
    )
    env = {"PGHOST": str(home), "PGPORT": "5432", "PGUSER": USER}
    try:
        psql(env, "postgres", f"CREATE DATABASE {DATABASE}")
        yield env
    finally:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=True,
            capture_output=True,
        )
        shutil.rmtree(home)


def psql(env: dict[str, str], database: str, sql: str) -> str:
    done = subprocess.run(
        [str(PG_BIN / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-At", "-d", database, "-c", sql],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def metabase_db(env: dict[str, str]) -> MetabaseDb:
    # The appliance's prefix is `docker exec -i metabase-db`; here: this server's tools.
    prefix = ["env", f"PATH={PG_BIN}:/usr/bin:/bin", *(f"{k}={v}" for k, v in env.items())]
    return MetabaseDb(prefix, USER, DATABASE)


# A small stand-in for Metabase's application database: a serial key, jsonb, text with
# quotes and non-ASCII, bytea, a foreign key, an index.
SCHEMA = """
CREATE TABLE collection (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE report_card (
    id serial PRIMARY KEY,
    collection_id int REFERENCES collection (id),
    name text NOT NULL,
    dataset_query jsonb NOT NULL,
    thumbnail bytea
);
CREATE INDEX report_card_name ON report_card (name);
INSERT INTO collection (name) VALUES ('Clickstream'), ('Ops ''night'' shift');
INSERT INTO report_card (collection_id, name, dataset_query, thumbnail) VALUES
  (1, 'Top pages', '{"native": {"query": "SELECT * FROM top_pages"}}', '\\x00ff10'),
  (1, 'Unique visitors — per minute', '{"native": {"query": "SELECT 1"}}', NULL),
  (2, 'Funnel', '{"type": "query", "source-table": 7}', '\\xdeadbeef');
"""
ROWS = (
    "SELECT c.id, c.name, r.id, r.name, r.dataset_query::text, encode(r.thumbnail, 'hex') "
    "FROM report_card r JOIN collection c ON c.id = r.collection_id ORDER BY r.id"
)


def test_a_restore_brings_back_metabase_s_database_exactly(postgres, tmp_path):
    psql(postgres, DATABASE, SCHEMA)
    before = psql(postgres, DATABASE, ROWS)
    assert before.count("\n") == 3
    db = metabase_db(postgres)
    dump = tmp_path / METABASE_PART
    db.dump(dump)
    assert dump.read_bytes()[:5] == b"PGDMP"  # the custom format pg_restore reads
    assert not (tmp_path / f"{METABASE_PART}.partial").exists()

    # After the backup: a card renamed, one added, one collection's cards deleted, a table
    # dropped altogether.
    psql(postgres, DATABASE, "UPDATE report_card SET name = 'renamed' WHERE id = 1")
    psql(
        postgres,
        DATABASE,
        "INSERT INTO report_card (collection_id, name, dataset_query) VALUES (1, 'new', '{}')",
    )
    psql(postgres, DATABASE, "DELETE FROM report_card WHERE collection_id = 2")
    psql(postgres, DATABASE, "DROP INDEX report_card_name")
    assert psql(postgres, DATABASE, ROWS) != before

    db.restore(dump)

    assert psql(postgres, DATABASE, ROWS) == before
    indexes = "SELECT indexname FROM pg_indexes WHERE tablename = 'report_card' ORDER BY 1"
    assert psql(postgres, DATABASE, indexes) == "report_card_name\nreport_card_pkey\n"
    # The sequence came back too: the next card gets the id after the backup's last.
    assert psql(
        postgres,
        DATABASE,
        "INSERT INTO report_card (name, dataset_query) VALUES ('next', '{}') RETURNING id",
    ).startswith("4\n")


def test_a_failed_restore_leaves_the_database_as_it_was(postgres, tmp_path):
    psql(postgres, DATABASE, SCHEMA)
    db = metabase_db(postgres)
    dump = tmp_path / METABASE_PART
    db.dump(dump)
    psql(postgres, DATABASE, "UPDATE report_card SET name = 'kept' WHERE id = 1")
    # Made after the backup and not in it: a view on report_card. pg_restore --clean drops
    # the dump's index and constraints first, then fails to drop the table under the view.
    psql(postgres, DATABASE, "CREATE VIEW card_names AS SELECT name FROM report_card")
    indexes = "SELECT indexname FROM pg_indexes WHERE tablename = 'report_card' ORDER BY 1"
    rows, index_names = psql(postgres, DATABASE, ROWS), psql(postgres, DATABASE, indexes)

    with pytest.raises(subprocess.CalledProcessError):
        db.restore(dump)

    # One transaction: the drops before the failure were rolled back with it.
    assert psql(postgres, DATABASE, ROWS) == rows
    assert (
        psql(postgres, DATABASE, indexes) == index_names == ("report_card_name\nreport_card_pkey\n")
    )
