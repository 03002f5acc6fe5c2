"""This machine's name for claims and locks, as far as "is that process still alive?" can be
answered here: only a process with the same name is looked up by its pid.

The host name alone is not enough. Containers that share one (the containers of a Kubernetes
pod, `docker run --network host`) each number their processes from 1, a restarted container
keeps its host name while its processes are new, and after a reboot the same ids come back. So
the name adds a digest of the kernel's boot id and this process's PID namespace.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
from pathlib import Path

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
PID_NAMESPACE = "/proc/self/ns/pid"


@functools.cache
def name() -> str:
    """`host~digest`, at most 40 characters (where /proc is missing, the same on every boot)."""
    try:
        boot = BOOT_ID.read_text(encoding="ascii").strip()
    except OSError:
        boot = ""
    try:
        namespace = os.readlink(PID_NAMESPACE)
    except OSError:
        namespace = ""
    digest = hashlib.sha256(f"{boot}/{namespace}".encode()).hexdigest()[:8]
    return f"{socket.gethostname()[:31]}~{digest}"


def alive(pid: int) -> bool:
    """Whether a process of this machine (this PID namespace) runs under `pid`."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True
