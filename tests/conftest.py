"""Fixtures shared by the unit and integration suites.

One SparkSession serves every test in a run (Spark allows one per process), built by the
job's own build_spark with the Kafka connector on its classpath, so unit tests of the
transformations and the integration tests of the streaming query use the same Spark.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import settings as settings_module
from app.settings import Settings
from app.storage.embedded import EmbeddedStore
from app.storage.migrations import migrate

REPO = Path(__file__).resolve().parents[1]
SPARK_KAFKA_JARS = REPO / ".cache" / "jars" / "spark-kafka"
KAFKA_BROKER_JARS = REPO / ".cache" / "jars" / "kafka-broker"


def make_settings(**values: str) -> Settings:
    """Settings from the defaults plus the given environment values, never os.environ."""
    return settings_module.load(environ={k.upper(): str(v) for k, v in values.items()})


def free_port() -> int:
    """A port nothing listens on, and whose neighbour (the KRaft controller) is free too."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port + 1)) != 0:
                return port


@pytest.fixture(scope="session")
def spark():
    from app.processor import job

    if not any(SPARK_KAFKA_JARS.glob("spark-sql-kafka-*.jar")):
        pytest.fail(f"Spark's Kafka connector is missing in {SPARK_KAFKA_JARS}: run `make setup`")
    settings = make_settings(spark_master="local[2]", spark_jars=str(SPARK_KAFKA_JARS))
    session = job.build_spark(settings, {"spark.ui.enabled": "false"})
    yield session
    session.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    """The real ClickHouse engine (chDB) on disk, migrated. chDB allows one open folder
    per process, so every test closes its store."""
    opened = EmbeddedStore(str(tmp_path / "clickhouse"), "clickstream")
    migrate(opened)
    yield opened
    opened.close()
