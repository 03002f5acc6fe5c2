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

# The command's own peak: VmHWM of its memory as it exits. Not wait4's ru_maxrss: subprocess
# starts the child with vfork, and Linux keeps the parent's high-water mark across the exec, so
# a child of a large pytest process (260 MB after the other tests) "peaked" at the parent's size.
PEAK_AT_EXIT = """
import atexit, runpy, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("peak_kb=" + line.split()[1] + "\\n")
atexit.register(peak)
sys.argv = ["syndicate", *sys.argv[1:]]
runpy.run_module("syndicate", run_name="__main__", alter_sys=True)
"""


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
    sync = subprocess.run(
        [sys.executable, "-c", PEAK_AT_EXIT, "--config", config, "subscribers", "sync"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=300,
    )
    readers.unlink()
    lines = sync.stderr.decode(errors="replace").strip().splitlines()
    [peak_kb] = [int(line.split("=")[1]) for line in lines if line.startswith("peak_kb=")]
    error = [line for line in lines if not line.startswith("peak_kb=")][-1:]
    assert peak_kb < LIMIT_KB, (
        f"syndicate subscribers sync peaked at {peak_kb // 1024} MB on a "
        f"{SIZE >> 20} MB list of one line (exit {sync.returncode}: {error})"
    )
