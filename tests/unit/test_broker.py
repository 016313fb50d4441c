"""LocalBroker.kill without a JVM: a stand-in process group takes the broker's place."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from app.runtime.broker import LocalBroker


def gone(pid: int) -> bool:
    """True once the process has exited (a zombie waiting for its parent counts)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_kill_sigkills_the_whole_process_group(tmp_path):
    broker = LocalBroker("127.0.0.1:19092", str(tmp_path))
    # A shell that ignores SIGTERM and has a child: only SIGKILL of the group ends both.
    broker.process = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; sleep 300 & echo $!; wait"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    child = int(broker.process.stdout.readline())
    broker.kill()
    assert broker.process.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 30
    while not gone(child):
        assert time.monotonic() < deadline, f"child {child} outlived the kill"
        time.sleep(0.05)
    broker.process.stdout.close()


def test_kill_is_a_no_op_before_start_and_after_exit(tmp_path):
    broker = LocalBroker("127.0.0.1:19092", str(tmp_path))
    broker.kill()  # never started
    broker.process = subprocess.Popen(["true"], start_new_session=True)
    broker.process.wait()
    broker.kill()  # already exited: its group is gone, nothing to signal
    assert broker.process.returncode == 0
