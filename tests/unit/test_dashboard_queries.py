"""Every dashboard query runs on the migrated schema, and starts as the JDBC driver needs."""

from __future__ import annotations

from pathlib import Path

import pytest

QUERIES = Path(__file__).resolve().parents[2] / "app" / "sql" / "queries"
FILES = sorted(QUERIES.glob("*.sql"))


def test_there_are_dashboard_queries():
    assert len(FILES) >= 11


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_dashboard_query_runs_on_the_migrated_schema(store, path):
    sql = path.read_text()
    # The ClickHouse JDBC driver Metabase uses fails on a leading block comment.
    assert sql.lstrip().startswith(("SELECT", "--")), path.name
    assert isinstance(store.query(sql), list)
