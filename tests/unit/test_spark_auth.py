"""The driver authenticates to a spark:// cluster, and keeps the secret off its JVM's command line.

pyspark passes the options of the session it starts the JVM for as `spark-submit --conf`
arguments, readable by every user of the host: build_spark must start the JVM without
the secret and give it to the session afterwards. Spark itself is replaced by recorders
here (a real standalone cluster runs in the processor role's Molecule scenario, which
also reads the driver's command line).
"""

from __future__ import annotations

import pyspark
import pytest
from pyspark.sql import SparkSession

from app.processor import job
from tests.conftest import make_settings

SECRET = "0123456789abcdef0123456789abcdef"


class Recorder:
    """Stands in for SparkContext's JVM launch and SparkSession's builder."""

    def __init__(self) -> None:
        self.launched: dict[str, str] | None = None
        self.session: dict[str, str] = {}

    def ensure_initialized(self, instance=None, gateway=None, conf=None) -> None:
        self.launched = dict(conf.getAll())

    def config(self, key: str, value: str) -> Recorder:
        self.session[key] = value
        return self

    def getOrCreate(self) -> str:  # SparkSession.Builder's name
        return "session"


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    fake = Recorder()
    monkeypatch.setattr(pyspark.SparkContext, "_gateway", None)
    monkeypatch.setattr(pyspark.SparkContext, "_ensure_initialized", fake.ensure_initialized)
    monkeypatch.setattr(SparkSession, "builder", fake)
    return fake


def test_the_jvm_starts_without_the_secret_and_the_session_gets_it(recorder, tmp_path):
    (tmp_path / "spark-sql-kafka-0-10_2.13-4.2.0.jar").write_bytes(b"")
    settings = make_settings(
        spark_master="spark://127.0.0.1:7077", spark_auth_secret=SECRET, spark_jars=str(tmp_path)
    )
    assert job.build_spark(settings) == "session"
    assert recorder.launched is not None
    assert SECRET not in str(recorder.launched)
    # Everything the launch itself needs is on the command line, and authentication is on.
    assert recorder.launched["spark.master"] == "spark://127.0.0.1:7077"
    assert recorder.launched["spark.driver.memory"] == "1g"
    assert recorder.launched["spark.driver.extraJavaOptions"].startswith("-Dlog4j2.")
    assert recorder.launched["spark.authenticate"] == "true"
    assert recorder.session == dict(recorder.launched, **{"spark.authenticate.secret": SECRET})


def test_local_spark_starts_as_before_without_authentication(recorder):
    settings = make_settings(spark_master="local[2]", spark_auth_secret=SECRET)
    job.build_spark(settings)
    assert recorder.launched is None  # the builder starts the JVM itself, as always
    assert "spark.authenticate" not in recorder.session
    assert "spark.authenticate.secret" not in recorder.session
    assert recorder.session["spark.master"] == "local[2]"


def test_only_a_spark_master_gets_the_secret():
    assert (
        job.cluster_secret(make_settings(spark_master="local[*]", spark_auth_secret=SECRET)) == ""
    )
    cluster = make_settings(spark_master="spark://m:7077", spark_auth_secret=SECRET)
    assert job.cluster_secret(cluster) == SECRET
