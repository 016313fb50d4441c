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
from collections.abc import Callable, Sequence
from pathlib import Path

from app.lifecycle import terminate

SAMPLE_SECONDS = 0.2


def _status_mib(pid: int, *names: str) -> list[float]:
    """Fields of /proc/PID/status in MiB; 0 each for a process that has exited (a zombie
    has no memory left)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return [0.0] * len(names)
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return [int(fields.get(name, "0 kB").split()[0]) / 1024 for name in names]


def peak_rss_mib(pid: int) -> float:
    """VmHWM in MiB; 0 for a process that has exited."""
    return round(_status_mib(pid, "VmHWM")[0], 1)


def resident_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, RssFile) in MiB now; (0, 0) for a process that has exited."""
    rss, file = _status_mib(pid, "VmRSS", "RssFile")
    return rss, file


class StackMemory:
    """The whole stack's resident memory at once: every part's VmRSS read in the same
    sample, a few times a second, and the highest sum seen.

    The sum of each process's own peak overstates the stack (the peaks need not fall
    together); this is what the host held at its busiest sampled moment. RssFile is the
    part of it that is file pages (chDB's 530 MiB library, the JVMs' jars and libraries):
    clean pages the kernel can drop and read again, counted in RSS all the same.
    """

    def __init__(self, parts: dict[str, int], producers: Callable[[], list[int]]) -> None:
        self.parts, self.producers = parts, producers
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            now = {name: resident_mib(pid) for name, pid in self.parts.items()}
            producers = [resident_mib(pid) for pid in self.producers()]
            now["producer"] = (sum(r for r, _ in producers), sum(f for _, f in producers))
            total = sum(rss for rss, _ in now.values())
            if total > self.peak.get("total", 0.0):
                self.peak = {name: rss for name, (rss, _) in now.items()}
                self.peak["file_backed"] = sum(file for _, file in now.values())
                self.peak["total"] = total

    def stop(self) -> dict:
        """whole_stack_at_once_mib, and each part's MiB at that moment."""
        self._stop.set()
        self._thread.join()
        peak = {name: round(mib, 1) for name, mib in self.peak.items()}
        total = peak.pop("total", 0.0)
        return {"whole_stack_at_once_mib": total, "at_once_mib": peak}


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

    def pids_running(self, module: str) -> list[int]:
        """The pids of the running children started with `python -m module`."""
        with self._lock:
            return [p.pid for p in self.running if module in p.args]

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
