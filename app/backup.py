"""python -m app.backup: a logical backup of the appliance, and its restore.

A backup is one folder, BACKUPS_DIR/<name>/, holding what belongs together:

- ``clickhouse/``: ``BACKUP DATABASE`` of the pipeline's database, written by the server
  to its ``backups`` disk (the clickhouse role declares it; BACKUPS_DIR is that disk);
- ``checkpoints/``: a copy of CHECKPOINT_DIR, the streaming query's offsets, commits and
  state, taken while the processor is stopped, so it describes exactly the batches the
  tables hold;
- ``metabase.dump``: ``pg_dump -Fc`` of Metabase's application database (optional);
- ``manifest.json``: what is inside, written last: a folder without it is not a backup.

Why the processor must be stopped, and stopped between batches: every insert of a batch
carries the token ``<query>:<batch>``, and ClickHouse drops a repeated token by the
deduplication log kept next to each table's parts. ``BACKUP`` does not copy that log,
so a restored table accepts any token again. If the checkpoint held a batch whose
offsets were written but not its commit, the restarted query would replay that batch,
and whatever of it had already landed would count twice. ``backup`` therefore refuses a
checkpoint with such a batch. For the same reason ``restore`` drops the database before
it restores it: tables kept in place would keep the log of batches written after the
backup, and the restored query's next batches (same query id, same batch numbers, other
events) would be dropped as repeats.

The ClickHouse and checkpoint steps run here (on the host, with the migration runner's
virtualenv); the Metabase steps run pg_dump and pg_restore inside its Postgres
container. ansible/playbooks/backup.yml and restore.yml stop and start the services
around them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app import settings as settings_module
from app.storage.base import ClickHouseStore, quote_string

# The disk the clickhouse role declares in the server's storage_configuration and
# allows in <backups><allowed_disk>; its path is BACKUPS_DIR as the container sees it.
BACKUP_DISK = "backups"
MANIFEST = "manifest.json"
CLICKHOUSE_PART = "clickhouse"
CHECKPOINT_PART = "checkpoints"
METABASE_PART = "metabase.dump"
MANIFEST_VERSION = 1
# A name becomes a folder and a path inside a SQL string: letters, digits, . _ - only,
# not starting with a dot (no hidden folders, no "..").
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class BackupError(RuntimeError):
    """A backup or restore refused before it changed anything, with the reason."""


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise BackupError(
            f"backup name {name!r}: use letters, digits, '.', '_' and '-' "
            "(at most 100, not starting with '.' or '-')"
        )
    return name


def default_name(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _identifier(database: str) -> str:
    if not _IDENTIFIER.fullmatch(database):
        raise BackupError(f"database name {database!r} is not a plain identifier")
    return database


def backup_sql(database: str, name: str) -> str:
    return (
        f"BACKUP DATABASE {_identifier(database)} TO Disk("
        f"{quote_string(BACKUP_DISK)}, {quote_string(check_name(name) + '/' + CLICKHOUSE_PART)})"
    )


def drop_sql(database: str) -> str:
    # SYNC: the tables' folders (their parts and deduplication logs) are gone before the
    # restore recreates them.
    return f"DROP DATABASE IF EXISTS {_identifier(database)} SYNC"


def restore_sql(database: str, name: str) -> str:
    # allow_non_empty_tables=false (the default, said out loud): a restore never merges
    # into a table that still exists.
    return (
        f"RESTORE DATABASE {_identifier(database)} FROM Disk("
        f"{quote_string(BACKUP_DISK)}, {quote_string(check_name(name) + '/' + CLICKHOUSE_PART)})"
        " SETTINGS allow_non_empty_tables = false"
    )


# ---- the checkpoint ----------------------------------------------------------------


def batch_ids(folder: Path) -> set[int]:
    """Batch ids of a Spark metadata log (offsets/ or commits/): files named by number.

    Also what app.processor.gaps reads a checkpoint by (this module has no heavy imports:
    the migration runner's virtualenv holds it without Spark).
    """
    if not folder.is_dir():
        return set()
    return {int(p.name) for p in folder.iterdir() if p.name.isdigit()}


def unfinished_batches(checkpoint_root: Path) -> dict[str, list[int]]:
    """Per query folder under CHECKPOINT_DIR: batches with offsets but no commit."""
    found = {}
    for query in sorted(p for p in checkpoint_root.iterdir() if (p / "offsets").is_dir()):
        pending = sorted(batch_ids(query / "offsets") - batch_ids(query / "commits"))
        if pending:
            found[query.name] = pending
    return found


def last_committed(checkpoint_root: Path) -> dict[str, int | None]:
    return {
        query.name: max(batch_ids(query / "commits"), default=None)
        for query in sorted(p for p in checkpoint_root.iterdir() if (p / "offsets").is_dir())
    }


def copy_tree(source: Path, target: Path) -> None:
    """Copy a folder with modes, times and owners (the checkpoint belongs to uid 185)."""
    shutil.copytree(source, target, symlinks=True)
    for path in [target, *target.rglob("*")]:
        original = source / path.relative_to(target)
        info = original.lstat()
        if (info.st_uid, info.st_gid) != (path.lstat().st_uid, path.lstat().st_gid):
            os.lchown(path, info.st_uid, info.st_gid)


# ---- Metabase's Postgres -----------------------------------------------------------


def pg_dump_argv(prefix: Sequence[str], user: str, database: str) -> list[str]:
    """pg_dump in the custom format (what pg_restore reads), to standard output."""
    return [*prefix, "pg_dump", "--format=custom", f"--username={user}", f"--dbname={database}"]


def pg_restore_argv(prefix: Sequence[str], user: str, database: str) -> list[str]:
    """pg_restore of a custom-format dump from standard input, replacing what is there.

    --clean --if-exists drops each object before recreating it; --single-transaction
    and --exit-on-error make a failed restore leave the database as it was.
    """
    return [
        *prefix,
        "pg_restore",
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
        f"--username={user}",
        f"--dbname={database}",
    ]


def docker_exec_prefix(container: str) -> list[str]:
    # -i: pg_restore reads the dump from standard input.
    return ["docker", "exec", "-i", container]


class MetabaseDb:
    """Metabase's application database, reached by running the client tools through `prefix`.

    On the appliance the prefix is `docker exec -i <container>` (the tools of the
    container's own PostgreSQL, over its local socket); tests give a local server's tools.
    """

    def __init__(self, prefix: Sequence[str], user: str, database: str) -> None:
        self.prefix, self.user, self.database = list(prefix), user, database

    def dump(self, target: Path) -> None:
        partial = target.with_name(target.name + ".partial")
        with partial.open("wb") as out:
            subprocess.run(
                pg_dump_argv(self.prefix, self.user, self.database), stdout=out, check=True
            )
        partial.rename(target)

    def restore(self, source: Path) -> None:
        with source.open("rb") as dump:
            subprocess.run(
                pg_restore_argv(self.prefix, self.user, self.database), stdin=dump, check=True
            )


# ---- the steps -----------------------------------------------------------------------


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(f"{folder} has no {MANIFEST}: not a finished backup")
    manifest = json.loads(path.read_text())
    if manifest.get("version") != MANIFEST_VERSION:
        raise BackupError(f"{path}: manifest version {manifest.get('version')!r} is not 1")
    return manifest


def take_backup(
    store: ClickHouseStore,
    database: str,
    backups_dir: Path,
    name: str,
    checkpoint_dir: Path,
    now: datetime,
    metabase: MetabaseDb | None = None,
) -> dict[str, Any]:
    """BACKUP the database, copy the checkpoint next to it, dump Metabase's database.

    The processor is stopped (the playbook stops it first).
    """
    folder = backups_dir / check_name(name)
    if folder.exists():
        raise BackupError(f"{folder} exists already: choose another name")
    if not checkpoint_dir.is_dir():
        raise BackupError(f"CHECKPOINT_DIR {checkpoint_dir} is not a folder")
    pending = unfinished_batches(checkpoint_dir)
    if pending:
        raise BackupError(
            f"the checkpoint has batches without a commit ({pending}): the processor stopped "
            "in the middle of a batch, and a restore would replay it into tables that no "
            "longer know its deduplication token. Start the processor, let it finish a "
            "batch, stop it and back up again."
        )
    store.command(backup_sql(database, name))
    copy_tree(checkpoint_dir, folder / CHECKPOINT_PART)
    if metabase is not None:
        metabase.dump(folder / METABASE_PART)
    manifest = {
        "version": MANIFEST_VERSION,
        "name": name,
        "created_at": now.astimezone(UTC).isoformat(timespec="seconds"),
        "database": database,
        "clickhouse": f"{CLICKHOUSE_PART}/ (BACKUP DATABASE, disk {BACKUP_DISK!r})",
        "tables": {
            row["name"]: int(row["rows"])
            for row in store.query(
                "SELECT name, total_rows AS rows FROM system.tables "
                f"WHERE database = {quote_string(database)} AND total_rows IS NOT NULL "
                "ORDER BY name"
            )
        },
        "checkpoints": f"{CHECKPOINT_PART}/",
        "last_committed_batch": last_committed(checkpoint_dir),
        "metabase": METABASE_PART if (folder / METABASE_PART).is_file() else None,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def restore_backup(
    store: ClickHouseStore,
    database: str,
    backups_dir: Path,
    name: str,
    checkpoint_dir: Path,
    metabase: MetabaseDb | None = None,
) -> dict[str, Any]:
    """Replace the database, the checkpoint and Metabase's database by the backup's.

    The processor and Metabase are stopped (the playbook stops them first).
    """
    folder = backups_dir / check_name(name)
    manifest = read_manifest(folder)
    if manifest["database"] != database:
        raise BackupError(f"{name} holds database {manifest['database']!r}, not {database!r}")
    saved = folder / CHECKPOINT_PART
    if not saved.is_dir():
        raise BackupError(f"{saved} is missing: the tables cannot be restored without it")
    if metabase is not None and manifest.get("metabase") is None:
        raise BackupError(f"{name} has no Metabase database to restore")
    store.command(drop_sql(database))
    store.command(restore_sql(database, name))
    # The checkpoint last: until here a failure leaves the old checkpoint, which the
    # processor refuses to start over tables it does not match only if they are empty.
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    for child in checkpoint_dir.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    for child in saved.iterdir():
        if child.is_dir() and not child.is_symlink():
            copy_tree(child, checkpoint_dir / child.name)
        else:
            shutil.copy2(child, checkpoint_dir / child.name, follow_symlinks=False)
    if metabase is not None:
        metabase.restore(folder / METABASE_PART)
    return manifest


# ---- the command line ----------------------------------------------------------------


def _flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=("backup", "restore", "pending"),
        help="pending: exit 3 if the checkpoint has a batch without a commit (make backup "
        "then lets the processor finish one and stops it again)",
    )
    parser.add_argument("--name", help="the backup's folder under --backups-dir")
    parser.add_argument("--backups-dir", type=Path, help="the host folder of the backups disk")
    parser.add_argument("--checkpoint-dir", required=True, type=Path, help="CHECKPOINT_DIR")
    parser.add_argument(
        "--metabase-container",
        help="Metabase's Postgres container: dump (restore) its database too",
    )
    parser.add_argument("--metabase-user", default="metabase")
    parser.add_argument("--metabase-database", default="metabase")


def main(argv: list[str] | None = None) -> int:
    settings, args = settings_module.from_cli(
        "Back up (or restore) ClickHouse with the processor's checkpoint, and Metabase's "
        "database. Run with the processor (and for a restore Metabase) stopped: make backup "
        "and make restore do.",
        ["clickhouse"],
        argv,
        extra=_flags,
        prog="python -m app.backup",
    )
    if args.action == "pending":
        pending = unfinished_batches(args.checkpoint_dir) if args.checkpoint_dir.is_dir() else {}
        print(json.dumps(pending, sort_keys=True))
        return 3 if pending else 0
    if args.name is None or args.backups_dir is None:
        parser_error = f"python -m app.backup {args.action}: --name and --backups-dir are needed"
        print(parser_error, file=sys.stderr)
        return 2
    metabase = None
    if args.metabase_container:
        metabase = MetabaseDb(
            docker_exec_prefix(args.metabase_container), args.metabase_user, args.metabase_database
        )
    from app.storage import open_store

    try:
        check_name(args.name)
        store = open_store(settings.clickhouse_url, settings.clickhouse_database)
        try:
            if args.action == "backup":
                manifest = take_backup(
                    store,
                    settings.clickhouse_database,
                    args.backups_dir,
                    args.name,
                    args.checkpoint_dir,
                    datetime.now(UTC),
                    metabase,
                )
            else:
                manifest = restore_backup(
                    store,
                    settings.clickhouse_database,
                    args.backups_dir,
                    args.name,
                    args.checkpoint_dir,
                    metabase,
                )
        finally:
            store.close()
    except (BackupError, subprocess.CalledProcessError) as exc:
        print(f"backup: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(manifest, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
