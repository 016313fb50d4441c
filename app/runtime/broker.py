"""A real Apache Kafka broker on this machine: KRaft, single node, a plain JVM process.

Runs the official broker jars that `make setup` resolved from Maven Central (see
app/runtime/maven/kafka-broker.pom.xml) with the listener taken from
KAFKA_BOOTSTRAP_SERVERS. Its log lives under DATA_DIR/kafka, so topics and offsets
survive a restart of the demo.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaConnectionError, KafkaTimeoutError, TopicAlreadyExistsError

log = logging.getLogger(__name__)

# How long a start (processor, notifier, demo) waits for a broker that is down; past it,
# the program stops naming KAFKA_BOOTSTRAP_SERVERS (systemd starts it again).
BROKER_WAIT_SECONDS = 300.0
BOOTSTRAP_ATTEMPT_MS = 5_000

# Resolved by `make setup` (app/runtime/maven/kafka-broker.pom.xml) next to the code.
DEFAULT_JARS = Path(__file__).resolve().parents[2] / ".cache" / "jars" / "kafka-broker"

SERVER_PROPERTIES = """\
# Written by app/runtime/broker.py for the local single-node broker.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={log_dir}
# One broker: internal topics cannot have more than one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
"""

LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
"""


class BrokerError(RuntimeError):
    pass


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class LocalBroker:
    def __init__(
        self, bootstrap: str, data_dir: str, jars: Path = DEFAULT_JARS, heap: str = "512m"
    ) -> None:
        first = bootstrap.split(",")[0]
        self.host, port = first.rsplit(":", 1)
        self.port = int(port)
        self.controller_port = self.port + 1
        self.dir = Path(data_dir, "kafka").resolve()
        self.jars = jars.resolve()
        self.heap = heap
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def _java(self, *args: str) -> list[str]:
        if not any(self.jars.glob("kafka_2.13-*.jar")):
            raise BrokerError(f"Kafka jars not found in {self.jars}: run `make setup`")
        return [
            "java",
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
            "-cp",
            f"{self.jars}/*",
            *args,
        ]

    def _configure(self) -> Path:
        log_dir = self.dir / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        props = self.dir / "server.properties"
        props.write_text(
            SERVER_PROPERTIES.format(
                host=self.host,
                port=self.port,
                controller_port=self.controller_port,
                log_dir=log_dir,
            )
        )
        (self.dir / "log4j2.properties").write_text(LOG4J2.format(log_file=self.dir / "broker.log"))
        if not (log_dir / "meta.properties").exists():
            # KRaft storage is formatted once with a cluster id; later starts reuse it.
            cluster_id = uuid.uuid4().hex[:22]
            subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)),
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        return props

    def start(self, timeout: float = 60.0) -> None:
        if _port_open(self.host, self.port):
            raise BrokerError(
                f"something already listens on {self.bootstrap} (KAFKA_BOOTSTRAP_SERVERS); "
                "stop it or choose another port"
            )
        props = self._configure()
        # The JVM keeps its own copy of the file descriptor; this process needs none.
        with open(self.dir / "broker.out", "ab") as out:
            # Its own process group, so stop() reaches the JVM and anything it starts.
            self.process = subprocess.Popen(
                self._java("kafka.Kafka", str(props)),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not _port_open(self.host, self.port):
            if self.process.poll() is not None:
                raise BrokerError(
                    f"broker exited with {self.process.returncode}; see {self.dir / 'broker.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"broker did not listen on {self.bootstrap} in {timeout:.0f}s")
            time.sleep(0.3)

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # SIGTERM lets the broker close its log cleanly, so the next start skips recovery.
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL the broker's process group, as a crash would: no clean shutdown.

        The ports and the log folder stay as they are, so start() brings the same broker
        back, which first recovers its log (the chaos test does exactly this).
        """
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ensure_topic(
    bootstrap: str, topic: str, partitions: int, wait: float = BROKER_WAIT_SECONDS
) -> bool:
    """Create the topic if it does not exist; True when it was created now.

    A broker that is down (crashed, restarting, not yet up at boot) is waited for, up to
    `wait` seconds, in short attempts: kafka-python's own bootstrap backs off to 30 s
    between tries and gives up after 30 s, so a broker back after 20 s could be missed.
    """
    deadline = time.monotonic() + wait
    attempt = 0
    while True:
        attempt += 1
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap.split(","),
                bootstrap_timeout_ms=max(
                    100, min(BOOTSTRAP_ATTEMPT_MS, int((deadline - time.monotonic()) * 1000))
                ),
                reconnect_backoff_max_ms=1000,
                request_timeout_ms=30_000,
            )
        except (KafkaTimeoutError, KafkaConnectionError) as error:
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"KAFKA_BOOTSTRAP_SERVERS: no Kafka broker answered at {bootstrap} "
                    f"within {wait:g} s (creating topic {topic})"
                ) from error
            log.info("waiting for Kafka at %s (attempt %d): %s", bootstrap, attempt, error)
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            continue
        try:
            if topic in admin.list_topics():
                return False
            try:
                admin.create_topics(
                    [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
                )
            except TopicAlreadyExistsError:
                return False
            return True
        finally:
            admin.close()
