"""`make demo`: the whole pipeline on this machine, with a live terminal view.

A real Kafka broker (KRaft, the official jars), the topic, the Spark job in local[*]
writing to the embedded ClickHouse engine, and the producer and the notifier as child
processes. The job runs in this process because chDB lets one process at a time own its
folder, and the view reads the same tables. Ctrl-C, SIGTERM or DEMO_DURATION end it; everything is
stopped in reverse order and the data stays under DATA_DIR for the next run.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from app import settings as settings_module
from app.lifecycle import setup_logging, stop_on_signals, terminate
from app.processor import job
from app.processor.gaps import DataLossError
from app.processor.sink import CheckpointMismatch
from app.runtime import view
from app.runtime.broker import LocalBroker, ensure_topic
from app.settings import Settings
from app.storage import open_store
from app.storage.migrations import migrate

log = logging.getLogger("app.demo")

CLEAR = "\033[H\033[2J"


def _log_to_file(path: Path) -> None:
    """Send this process's stderr (and the Spark JVM's, which inherits it) to a file.

    The terminal is the view's; logs are one `tail -f` away.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(handle, 2)
    os.close(handle)
    setup_logging(stream=sys.stderr)


def start_child(settings: Settings, module: str, log_path: Path) -> subprocess.Popen[bytes]:
    """The producer or the notifier, as a child process with the demo's settings."""
    env = {**os.environ, **settings_module.to_environ(settings)}
    with open(log_path, "ab") as out:
        # Its own session: Ctrl-C reaches the demo, which then stops the child itself.
        return subprocess.Popen(
            [sys.executable, "-m", module],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_child(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    terminate(process, timeout)  # SIGTERM: the producer flushes what it has buffered


def run(settings: Settings, stop: threading.Event) -> int:
    data = Path(settings.data_dir)
    logs = data / "logs"
    _log_to_file(logs / "demo.log")
    interactive = sys.stdout.isatty()
    print(f"starting: broker, topic, Spark job, notifier, producer (logs in {logs}/)", flush=True)

    def stage(text: str) -> None:
        # One line per stage: the first start downloads nothing but takes a while (the
        # broker's and Spark's JVMs), and a silent minute looks like a hang.
        print(f"demo: {text}", flush=True)

    with ExitStack() as cleanup:
        stage(f"starting the Kafka broker on {settings.kafka_bootstrap_servers}")
        broker = LocalBroker(settings.kafka_bootstrap_servers, settings.data_dir)
        broker.start()
        cleanup.callback(broker.stop)
        stage(f"creating the topic {settings.kafka_topic}")
        ensure_topic(broker.bootstrap, settings.kafka_topic, settings.kafka_partitions)

        stage("opening ClickHouse (embedded) and applying its migrations")
        store = open_store(settings.clickhouse_url, settings.clickhouse_database)
        cleanup.callback(store.close)
        migrate(store)

        stage("starting Spark (about 20 s the first time)")
        spark = job.build_spark(settings)
        cleanup.callback(job.stop_spark, spark)
        stop_on_signals(stop)  # again: the SparkContext has just replaced the SIGINT handler
        stage("starting the streaming query")
        try:
            pipeline = job.start(spark, settings, store)
        except (CheckpointMismatch, DataLossError) as exc:
            print(f"demo: error: {exc}", flush=True)
            return 2
        cleanup.callback(pipeline.stop)

        stage("starting the notifier and the producer; the view follows")
        notifier = start_child(settings, "app.notifier", logs / "notifier.log")
        cleanup.callback(stop_child, notifier)
        producer = start_child(settings, "app.producer", logs / "producer.log")
        cleanup.callback(stop_child, producer)

        started = time.monotonic()
        status, code = "running", 0
        while True:
            elapsed = time.monotonic() - started
            if settings.demo_duration:
                status = f"{elapsed:4.0f}/{settings.demo_duration:.0f}s"
            text = view.render(view.snapshot(store, settings.window_duration), status)
            print((CLEAR if interactive else "\n") + text, flush=True)
            failed = [q for q in pipeline.queries if not q.isActive]
            if failed:
                print(f"a query stopped: {failed[0].name}: {failed[0].exception()}", flush=True)
                code = 1
                break
            exited = [
                (name, child.returncode)
                for name, child in (("producer", producer), ("notifier", notifier))
                if child.poll() not in (None, 0)
            ]
            if exited:
                name, returncode = exited[0]
                print(f"the {name} exited with {returncode}; see {logs}/{name}.log")
                code = 1
                break
            if settings.demo_duration and elapsed >= settings.demo_duration:
                break
            if stop.wait(settings.view_refresh):
                break
        print("stopping: producer, notifier, Spark job, broker ...", flush=True)
    print(f"stopped. Data kept in {data}/ (make clean removes it).", flush=True)
    return code


def missing_tools() -> list[str]:
    """What the demo needs from the machine, checked before anything starts."""
    return [
        f"{tool} is not on PATH ({why})"
        for tool, why in (("java", "Java 17 runs the Kafka broker and Spark"),)
        if shutil.which(tool) is None
    ]


def main(argv: list[str] | None = None) -> int:
    settings, _ = settings_module.from_cli(
        "Run the whole pipeline on this machine with a live terminal view.",
        ["kafka", "clickhouse", "producer", "processor", "alerts", "notifier", "demo"],
        argv,
        prog="python -m app.runtime.demo",
    )
    for problem in missing_tools():
        print(f"demo: error: {problem}", file=sys.stderr)
        return 1
    stop = threading.Event()
    stop_on_signals(stop)
    return run(settings, stop)


if __name__ == "__main__":
    sys.exit(main())
