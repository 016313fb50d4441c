"""Child processes of the bench and their peak memory.

Peak memory is the resident-set high-water mark, VmHWM in /proc. A child's is sampled
while it runs, a few times a second, since it is gone once the child exits. (wait4()'s
ru_maxrss would be simpler but is wrong here: Linux carries the parent's high-water mark
over the fork and exec into the child's, so every child would look as large as the bench.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from app.lifecycle import terminate

SAMPLE_SECONDS = 0.2


def peak_rss_mib(pid: int) -> float:
    """VmHWM in MiB; 0 for a process that has exited (a zombie has no memory left)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def spark_jvm_pid() -> int:
    """The Spark driver JVM is the one child of this process running SparkSubmit."""
    me = str(os.getpid())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        parent = stat.rsplit(")", 1)[1].split()[1]
        if parent == me and b"SparkSubmit" in cmdline:
            return int(proc.name)
    raise RuntimeError("Spark driver JVM not found")


class Children:
    """Every process the bench starts: each is reaped with its peak memory, and whatever
    is still running when the bench stops (an error, Ctrl-C) is stopped with it."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []
        self.peaks: dict[int, float] = {}
        self._lock = threading.Lock()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while True:
            with self._lock:
                for process in self.running:
                    peak = peak_rss_mib(process.pid)
                    self.peaks[process.pid] = max(self.peaks.get(process.pid, 0.0), peak)
            time.sleep(SAMPLE_SECONDS)

    def start(
        self, args: Sequence[str], log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            process = subprocess.Popen(
                list(args),
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the bench, which stops it
            )
        with self._lock:
            self.running.append(process)
        return process

    def python(
        self, module: str, args: Sequence[str], log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        return self.start([sys.executable, "-m", module, *args], log, env)

    def reap(self, process: subprocess.Popen[bytes], timeout: float) -> float:
        """Wait for the process to exit; its peak resident memory in MiB."""
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop(process)
            raise TimeoutError(f"{process.args} still ran after {timeout:.0f} s") from None
        self._forget(process)
        return self.peaks.pop(process.pid, 0.0)

    def _forget(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            if process in self.running:
                self.running.remove(process)

    def run(
        self, args: Sequence[str], log: Path, timeout: float, env: dict[str, str] | None = None
    ) -> float:
        """Run to the end; fail with the log's tail if it does not exit 0. Peak MiB."""
        process = self.start(args, log, env)
        peak = self.reap(process, timeout)
        if process.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"{args[:4]} exited with {process.returncode}:\n{tail}")
        return peak

    def stop(self, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
        terminate(process, timeout)  # SIGTERM: a producer flushes, then exits
        self._forget(process)

    def stop_all(self) -> None:
        for process in list(self.running):
            self.stop(process)


def last_json_line(log: Path) -> dict:
    """The summary a program prints last (the producer's, the bench clients')."""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no summary line in {log}")
