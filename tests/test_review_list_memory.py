"""Review finding on the list sync's memory (branch `pgscale`, syndicate/audience/lists.py
`_records`: csv.reader over the text file reads one physical line at a time, however long).

The promise is flat memory whatever the list (≤ 100 MB for `syndicate send`). A list whose
bytes hold no newline (a file truncated mid-export, a binary saved as readers.csv, a hostile
upload kept as the list) is one "line": Python reads all of it, decoded, before the csv
module's field limit can refuse it. Peak RSS grows with the file's size.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

SIZE = 200 * 1024 * 1024  # a 200 MB list with no newline after its header
LIMIT_KB = 150 * 1024


def test_a_list_with_one_endless_line_is_read_in_bounded_memory(project: Path) -> None:
    readers = project / "subscribers" / "readers.csv"
    with readers.open("wb") as file:
        file.write(b"email,name\nann@example.com,")
        block = b"x" * (1 << 20)
        for _ in range(SIZE // len(block)):
            file.write(block)
    hour_ago = time.time() - 3600
    os.utime(readers, (hour_ago, hour_ago))
    config = str(project / "settings.toml")
    sync = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", config, "subscribers", "sync"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert sync.stderr is not None
    error = sync.stderr.read().decode(errors="replace").strip().splitlines()[-1:]
    _, status, usage = os.wait4(sync.pid, 0)  # this process's own peak, no other child's
    sync.returncode = os.waitstatus_to_exitcode(status)
    readers.unlink()
    assert usage.ru_maxrss < LIMIT_KB, (
        f"syndicate subscribers sync peaked at {usage.ru_maxrss // 1024} MB on a "
        f"{SIZE >> 20} MB list of one line (exit {sync.returncode}: {error})"
    )
