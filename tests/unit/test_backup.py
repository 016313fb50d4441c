"""make backup / make restore (app/backup.py) on the real ClickHouse engine (chDB).

The engine is given the server configuration the clickhouse role renders
(templates/config.xml.j2), its backups disk pointed at a temporary folder, so the
BACKUP and RESTORE statements run exactly as on the appliance, against the schema the
real migrations create.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jinja2
import pytest
import yaml

from app import backup
from app.processor.job import QUERY_NAME
from app.processor.sink import PAGE_CLICKS_COLUMNS, PROGRESS_COLUMNS
from app.storage.embedded import EmbeddedStore
from app.storage.migrations import migrate
from tests.events_table import arrow_events

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "ansible" / "roles" / "clickhouse"
# Recent, so the tables' TTL (which drops expired rows as they are inserted) keeps it.
W = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
NOW = datetime(2026, 12, 2, 17, 30, 5, tzinfo=UTC)
# The tables a batch writes, read whole and in a fixed order for exact comparisons.
TABLES = ("page_clicks_1m", "events", "pipeline_progress", "unique_visitors_1m")


def render_role_config(backups_dir: Path) -> str:
    """The clickhouse role's config.d/appliance.xml, with the backups disk at backups_dir."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLE / "templates"), undefined=jinja2.StrictUndefined
    )
    names = (
        "clickhouse_log_level",
        "clickhouse_bind_address",
        "clickhouse_max_server_memory_usage_to_ram_ratio",
        "clickhouse_system_log_ttl_days",
    )
    values = {name: defaults[name] for name in names}
    values.update(
        clickhouse_system_logs=role_vars["clickhouse_system_logs"],
        clickhouse_backups_disk=role_vars["clickhouse_backups_disk"],
        clickhouse_backups_dir=str(backups_dir),
        # On the appliance the container sees the host folder at another path; here the
        # engine runs on this machine and sees it where it is.
        clickhouse_backups_container_dir=str(backups_dir),
        ansible_managed="rendered by tests/unit/test_backup.py",
    )
    return env.get_template("config.xml.j2").render(**values)


@pytest.fixture
def backups_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "backups"
    folder.mkdir()
    return folder


@pytest.fixture
def store(tmp_path: Path, backups_dir: Path):
    config = tmp_path / "appliance.xml"
    config.write_text(render_role_config(backups_dir))
    s = EmbeddedStore(str(tmp_path / "clickhouse"), "clickstream", config_file=str(config))
    migrate(s)
    yield s
    s.close()


def write_checkpoint(root: Path, offsets: range, commits: range) -> Path:
    """A checkpoint as Spark lays it out: metadata, offsets/N, commits/N, state/."""
    query = root / QUERY_NAME
    (query / "offsets").mkdir(parents=True, exist_ok=True)
    (query / "commits").mkdir(exist_ok=True)
    (query / "state" / "0" / "0").mkdir(parents=True, exist_ok=True)
    (query / "metadata").write_text('{"id":"q"}\n')
    for n in offsets:
        (query / "offsets" / str(n)).write_text(f"v1\noffsets of batch {n}\n")
        (query / "state" / "0" / "0" / f"{n + 1}.delta").write_bytes(bytes([n]) * 8)
    for n in commits:
        (query / "commits" / str(n)).write_text(f'v1\n{{"nextBatchWatermarkMs":{n}}}\n')
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def write_batch(store: EmbeddedStore, batch_id: int, clicks: int, event_ids: list[str]) -> None:
    """What the sink writes for one batch, each insert under the batch's token."""
    token = f"q:{batch_id}"
    row = (W, W + timedelta(minutes=1), "/cart", clicks, batch_id, "q")
    store.insert("page_clicks_1m", PAGE_CLICKS_COLUMNS, [row], dedup_token=token)
    events = arrow_events([(e, W, f"user-{e}") for e in event_ids], batch_id)
    store.insert_arrow("events", events, dedup_token=f"{token}:0")
    progress = {
        "query_name": QUERY_NAME,
        "query_id": "q",
        "batch_id": batch_id,
        "reported_at": W,
        "batch_time": W,
        "num_input_rows": len(event_ids),
    }
    assert set(progress) <= set(PROGRESS_COLUMNS)
    store.insert("pipeline_progress", list(progress), [list(progress.values())], dedup_token=token)


def contents(store: EmbeddedStore) -> dict[str, list[dict]]:
    out = {}
    for table in TABLES:
        columns = [
            r["name"]
            for r in store.query(
                f"SELECT name FROM system.columns WHERE database = 'clickstream' "
                f"AND table = '{table}' AND default_kind NOT IN ('MATERIALIZED', 'ALIAS') "
                "ORDER BY position"
            )
        ]
        # Aggregate states are compared as their hex, so two equal states compare equal.
        select = ", ".join(f"hex(toString({c})) AS {c}" for c in columns)
        out[table] = store.query(f"SELECT {select} FROM {table} ORDER BY {select}")
    return out


def counts(store: EmbeddedStore) -> dict[str, int]:
    return {
        t: store.query(f"SELECT count() AS n FROM {t}")[0]["n"]
        for t in ("page_clicks_1m", "events", "pipeline_progress")
    }


# ---- the statements --------------------------------------------------------------------


def test_the_statements_are_exactly_these():
    assert backup.backup_sql("clickstream", "nightly-1") == (
        "BACKUP DATABASE clickstream TO Disk('backups', 'nightly-1/clickhouse')"
    )
    assert backup.drop_sql("clickstream") == "DROP DATABASE IF EXISTS clickstream SYNC"
    assert backup.restore_sql("clickstream", "nightly-1") == (
        "RESTORE DATABASE clickstream FROM Disk('backups', 'nightly-1/clickhouse') "
        "SETTINGS allow_non_empty_tables = false"
    )
    assert backup.default_name(NOW) == "20261202T173005Z"


@pytest.mark.parametrize("name", ["", "..", ".hidden", "-x", "a/b", "a'b", "a b", "x" * 101])
def test_a_name_that_is_not_one_plain_folder_is_refused(name):
    with pytest.raises(backup.BackupError, match="backup name"):
        backup.backup_sql("clickstream", name)


def test_a_database_name_that_is_not_an_identifier_is_refused():
    with pytest.raises(backup.BackupError, match="not a plain identifier"):
        backup.drop_sql("clickstream; DROP TABLE x")


def test_the_pg_commands_dump_custom_format_and_restore_in_one_transaction():
    prefix = backup.docker_exec_prefix("metabase-db")
    assert backup.pg_dump_argv(prefix, "metabase", "metabase") == [
        "docker", "exec", "-i", "metabase-db",
        "pg_dump", "--format=custom", "--username=metabase", "--dbname=metabase",
    ]  # fmt: skip
    assert backup.pg_restore_argv(prefix, "metabase", "metabase") == [
        "docker", "exec", "-i", "metabase-db",
        "pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
        "--exit-on-error", "--username=metabase", "--dbname=metabase",
    ]  # fmt: skip


# ---- the checkpoint --------------------------------------------------------------------


def test_unfinished_batches_are_offsets_without_a_commit(tmp_path):
    write_checkpoint(tmp_path, range(4), range(2))
    assert backup.unfinished_batches(tmp_path) == {QUERY_NAME: [2, 3]}
    assert backup.last_committed(tmp_path) == {QUERY_NAME: 1}
    write_checkpoint(tmp_path, range(4), range(4))
    assert backup.unfinished_batches(tmp_path) == {}


def test_copy_tree_keeps_the_owner(tmp_path):
    source = write_checkpoint(tmp_path / "cp", range(2), range(2))
    if os.geteuid() == 0:
        for path in [source, *source.rglob("*")]:
            os.lchown(path, 185, 185)
    owners = {(p.lstat().st_uid, p.lstat().st_gid) for p in [source, *source.rglob("*")]}
    backup.copy_tree(source, tmp_path / "copy")
    copied = tmp_path / "copy"
    assert {(p.lstat().st_uid, p.lstat().st_gid) for p in [copied, *copied.rglob("*")]} == owners
    assert tree(copied) == tree(source)


def test_the_configuration_the_role_renders_declares_the_backups_disk(backups_dir):
    import xml.etree.ElementTree as ET

    config = ET.fromstring(render_role_config(backups_dir))
    assert config.findtext("storage_configuration/disks/backups/type") == "local"
    assert config.findtext("storage_configuration/disks/backups/path") == f"{backups_dir}/"
    assert config.findtext("backups/allowed_disk") == "backups"


# ---- backup and restore on the engine ---------------------------------------------------


def test_a_restore_brings_back_the_tables_and_the_checkpoint_exactly(store, backups_dir, tmp_path):
    checkpoint = write_checkpoint(tmp_path / "checkpoints", range(2), range(2))
    write_batch(store, 0, 3, ["e1", "e2", "e3"])
    write_batch(store, 1, 5, ["e4", "e5"])
    at_backup, checkpoint_at_backup = contents(store), tree(checkpoint)
    assert counts(store) == {"page_clicks_1m": 2, "events": 5, "pipeline_progress": 2}

    manifest = backup.take_backup(store, "clickstream", backups_dir, "b1", checkpoint, NOW)

    folder = backups_dir / "b1"
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    assert manifest["name"] == "b1"
    assert manifest["created_at"] == "2026-12-02T17:30:05+00:00"
    assert manifest["last_committed_batch"] == {QUERY_NAME: 1}
    assert manifest["metabase"] is None
    assert {k: manifest["tables"][k] for k in ("page_clicks_1m", "events")} == {
        "page_clicks_1m": 2,
        "events": 5,
    }
    assert (folder / "clickhouse" / ".backup").is_file()
    assert tree(folder / "checkpoints") == checkpoint_at_backup

    # The pipeline goes on after the backup: batch 2 lands, its offsets and commit too.
    write_batch(store, 2, 9, ["e6"])
    write_checkpoint(checkpoint, range(3), range(3))
    assert counts(store) == {"page_clicks_1m": 3, "events": 6, "pipeline_progress": 3}

    backup.restore_backup(store, "clickstream", backups_dir, "b1", checkpoint)

    assert contents(store) == at_backup
    assert tree(checkpoint) == checkpoint_at_backup
    # The restored query's next batch is batch 2 again, with other events. The dropped
    # database took the deduplication log of the first batch 2 with it, so this one lands.
    write_batch(store, 2, 4, ["e7", "e8"])
    assert counts(store) == {"page_clicks_1m": 3, "events": 7, "pipeline_progress": 3}
    assert store.query("SELECT clicks FROM page_clicks_1m WHERE batch_id = 2") == [{"clicks": 4}]


def test_backup_does_not_carry_the_deduplication_log(store, backups_dir, tmp_path):
    """Why a checkpoint with an unfinished batch is refused (the engine's behaviour)."""
    checkpoint = write_checkpoint(tmp_path / "checkpoints", range(1), range(1))
    write_batch(store, 0, 3, ["e1", "e2", "e3"])
    write_batch(store, 0, 3, ["e1", "e2", "e3"])  # a replay before the backup: dropped
    assert counts(store) == {"page_clicks_1m": 1, "events": 3, "pipeline_progress": 1}
    backup.take_backup(store, "clickstream", backups_dir, "b1", checkpoint, NOW)
    backup.restore_backup(store, "clickstream", backups_dir, "b1", checkpoint)
    write_batch(store, 0, 3, ["e1", "e2", "e3"])  # the same replay after the restore lands
    assert counts(store) == {"page_clicks_1m": 2, "events": 6, "pipeline_progress": 2}


def test_a_checkpoint_with_an_unfinished_batch_is_refused_before_anything(
    store, backups_dir, tmp_path
):
    checkpoint = write_checkpoint(tmp_path / "checkpoints", range(3), range(2))
    with pytest.raises(backup.BackupError, match=r"without a commit \({'clickstream': \[2\]}\)"):
        backup.take_backup(store, "clickstream", backups_dir, "b1", checkpoint, NOW)
    assert list(backups_dir.iterdir()) == []


def test_an_existing_backup_is_never_overwritten(store, backups_dir, tmp_path):
    checkpoint = write_checkpoint(tmp_path / "checkpoints", range(1), range(1))
    backup.take_backup(store, "clickstream", backups_dir, "b1", checkpoint, NOW)
    before = tree(backups_dir)
    with pytest.raises(backup.BackupError, match="exists already"):
        backup.take_backup(store, "clickstream", backups_dir, "b1", checkpoint, NOW)
    assert tree(backups_dir) == before


def test_a_folder_without_its_manifest_is_not_restored(store, backups_dir, tmp_path):
    checkpoint = write_checkpoint(tmp_path / "checkpoints", range(1), range(1))
    write_batch(store, 0, 3, ["e1"])
    backup.take_backup(store, "clickstream", backups_dir, "b1", checkpoint, NOW)
    (backups_dir / "b1" / "manifest.json").unlink()
    with pytest.raises(backup.BackupError, match=r"no manifest\.json: not a finished backup"):
        backup.restore_backup(store, "clickstream", backups_dir, "b1", checkpoint)
    assert counts(store) == {"page_clicks_1m": 1, "events": 1, "pipeline_progress": 1}


def test_the_command_line_backs_up_and_restores(tmp_path, backups_dir, capsys):
    config = tmp_path / "appliance.xml"
    config.write_text(render_role_config(backups_dir))
    data = tmp_path / "clickhouse"
    s = EmbeddedStore(str(data), "clickstream", config_file=str(config))
    migrate(s)
    write_batch(s, 0, 3, ["e1", "e2"])
    s.close()
    checkpoint = write_checkpoint(tmp_path / "checkpoints", range(1), range(1))
    # The CLI opens CLICKHOUSE_URL; chdb:// URLs carry no configuration, so the command
    # line is checked here on the refusal that comes before any ClickHouse statement.
    write_checkpoint(checkpoint, range(2), range(1))
    argv = ["backup", "--name", "b1", "--backups-dir", str(backups_dir)]
    argv += ["--checkpoint-dir", str(checkpoint), "--clickhouse-url", f"chdb://{data}"]
    assert backup.main(argv) == 2
    assert "batches without a commit ({'clickstream': [1]})" in capsys.readouterr().err
    assert backup.main([*argv[:2], "../x", *argv[3:]]) == 2
    assert "backup name '../x'" in capsys.readouterr().err


def test_pending_says_whether_the_processor_stopped_between_batches(tmp_path, capsys):
    checkpoint = write_checkpoint(tmp_path / "checkpoints", range(3), range(2))
    assert backup.main(["pending", "--checkpoint-dir", str(checkpoint)]) == 3
    assert capsys.readouterr().out == '{"clickstream": [2]}\n'
    write_checkpoint(checkpoint, range(3), range(3))
    assert backup.main(["pending", "--checkpoint-dir", str(checkpoint)]) == 0
    assert capsys.readouterr().out == "{}\n"
