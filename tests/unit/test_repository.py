"""The repository stands alone: nothing in it points at a folder outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The folders these machines keep beside a checkout (the development notes, the tools).
OUTSIDE = re.compile(r"/work/|\.\./shared/")


def test_no_tracked_file_points_outside_the_repository():
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    offending = []
    for name in filter(None, files):
        path = ROOT / name.decode()
        if path == Path(__file__).resolve() or path.suffix in {".png", ".tar", ".gz"}:
            continue
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        offending += [
            f"{name.decode()}:{number}: {line.strip()}"
            for number, line in enumerate(text.splitlines(), 1)
            if OUTSIDE.search(line)
        ]
    assert offending == []
