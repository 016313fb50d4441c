"""Which connector jars the Spark session loads."""

from __future__ import annotations

import pytest

from app.processor.job import _artifact, connector_jars


@pytest.mark.parametrize(
    ("name", "artifact"),
    [
        ("kafka-clients-3.9.2.jar", "kafka-clients"),
        ("spark-sql-kafka-0-10_2.13-4.2.0.jar", "spark-sql-kafka-0-10_2.13"),
        ("hadoop-client-api-3.5.0.jar", "hadoop-client-api"),
    ],
)
def test_artifact_name(name, artifact):
    assert _artifact(name) == artifact


def test_a_maven_folder_loses_the_jars_pyspark_already_ships(tmp_path):
    for name in (
        "spark-sql-kafka-0-10_2.13-4.2.0.jar",
        "kafka-clients-3.9.2.jar",
        "commons-pool2-2.13.1.jar",
        "scala-library-2.13.15.jar",
        "hadoop-client-api-3.5.0.jar",
        "slf4j-api-1.7.36.jar",
    ):
        (tmp_path / name).write_bytes(b"")
    assert [p.rsplit("/", 1)[1] for p in connector_jars(str(tmp_path))] == [
        "commons-pool2-2.13.1.jar",
        "kafka-clients-3.9.2.jar",
        "spark-sql-kafka-0-10_2.13-4.2.0.jar",
    ]


def test_a_missing_jar_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"SPARK_JARS: no jar at /nowhere\.jar"):
        connector_jars("/nowhere.jar")
