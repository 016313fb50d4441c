"""`make bench QUICK=1`, run as the Makefile runs it: every figure there, and sane.

The quick bench runs every stage small (a broker, the producers, the job, steps of steady
input). Its numbers depend on the machine and on what else runs; this test checks that
each one was measured and is consistent with itself, never how large it is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.runtime.bench.producers import KAFKA_TOOLS_JARS
from tests.conftest import REPO, SPARK_KAFKA_JARS, free_port

pytestmark = pytest.mark.integration

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SMALL = ["--events", "10000", "--flat-seconds", "4", "--step-seconds", "8", "--rates", "1000"]
SMALL += ["--search-steps", "1"]
# A guard against a hung run, not a claim about its speed.
RUN_TIMEOUT = 3600


def check_step(step: dict) -> None:
    assert step["target_events_per_second"] > 0
    assert step["events_per_second"] > 0
    assert step["markers"] > 0
    assert 0 < step["freshness_p50_s"] <= step["freshness_p95_s"] <= step["freshness_p99_s"]
    assert step["freshness_p99_s"] <= step["freshness_max_s"]
    assert step["lag_start"] >= 0 and step["lag_end"] >= 0
    assert isinstance(step["passed"], bool)
    assert step["producer_peak_rss_mib"] > 0


def test_quick_bench_measures_every_figure(tmp_path):
    if not any(KAFKA_TOOLS_JARS.glob("kafka-tools-*.jar")):
        pytest.fail(f"Kafka's tools jars are missing in {KAFKA_TOOLS_JARS}: run `make setup`")
    data = tmp_path / "data"
    # The bench puts its broker 100 above KAFKA_BOOTSTRAP_SERVERS' port: on a free one.
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "JAVA_HOME", "LANG")},
        "DATA_DIR": str(data),
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port - 100}",
        "SPARK_JARS": str(SPARK_KAFKA_JARS),
    }
    run = subprocess.run(
        # Smaller than the quick mode's own sizes: this checks that every figure is there,
        # and CI's time is better spent elsewhere than on larger samples.
        [sys.executable, "-m", "app.runtime.bench", "--quick", *SMALL],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    root = data / "bench"
    results = json.loads((root / "results.json").read_text())

    assert results["mode"] == "quick"
    events = results["events"]
    assert events["count"] > 0 and events["mean_bytes"] > 0
    assert events["record_size"] == round(events["mean_bytes"])

    producers = results["producers"]
    for client in ("kafka-python", "confluent-kafka"):
        assert producers[client]["sent"] == events["count"]
        assert producers[client]["failed"] == 0
        assert producers[client]["events_per_second"] > 0
    perf = producers["java-producer-performance"]
    assert perf["records"] == events["count"]
    assert perf["record_size"] == events["record_size"]
    assert perf["records_per_second"] > 0

    program = results["producer_program"]
    assert set(program) == {"kafka-python", "confluent-kafka"}
    for summary in program.values():
        assert summary["sent"] > 0 and summary["failed"] == 0
        assert summary["events_per_second"] > 0

    drain = results["job_drain"]
    assert drain["events"] > 0 and drain["batches"] >= 1
    assert drain["events_per_second"] > 0
    assert drain["max_offsets_per_trigger"] == results["settings"]["max_offsets_per_trigger"]

    assert [s["target_events_per_second"] for s in results["freshness"]] == [1000]
    for step in results["freshness"]:
        check_step(step)

    sustainable = results["sustainable"]
    for step in sustainable["steps"]:
        check_step(step)
    # The search's answer is one of the steps that passed, or none passed.
    passed = [s for s in results["freshness"] + sustainable["steps"] if s["passed"]]
    if sustainable["found"]:
        assert sustainable["events_per_second"] in {s["events_per_second"] for s in passed}
    else:
        assert passed == [] and sustainable["events_per_second"] == 0

    memory = results["memory"]
    parts = ("broker_jvm_mib", "spark_driver_jvm_mib", "driver_python_mib")
    assert all(memory[part] > 0 for part in parts)
    assert memory["producers_mib"] and all(v > 0 for v in memory["producers_mib"].values())
    assert memory["whole_stack_mib"] > sum(memory[part] for part in parts)
    # At once: every part read in the same sample; no part above its own peak, so the
    # sum no higher than the peaks' sum (a tenth of a MiB each for rounding).
    at_once = memory["at_once_mib"]
    assert set(at_once) == {
        "broker_jvm",
        "spark_driver_jvm",
        "driver_python",
        "producer",
        "file_backed",
    }
    for part in ("broker_jvm", "spark_driver_jvm", "driver_python"):
        assert 0 < at_once[part] <= memory[f"{part}_mib"] + 0.1
    stack = sum(v for k, v in at_once.items() if k != "file_backed")
    assert memory["whole_stack_at_once_mib"] == pytest.approx(stack, abs=0.5)
    assert memory["whole_stack_at_once_mib"] <= memory["whole_stack_mib"] + 0.5
    assert 0 < at_once["file_backed"] < memory["whole_stack_at_once_mib"]

    assert (root / results["plot"]).read_bytes().startswith(PNG_SIGNATURE)
    # The table was printed, and ends with the whole stack's memory.
    assert "whole stack" in run.stdout
