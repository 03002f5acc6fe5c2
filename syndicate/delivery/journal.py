"""The accepted-message journal: one line per message a server accepted, written the moment it
answers, kept until the batch's outcome is committed to the database.

Without it a kill -9 between the server's answer and the database commit leaves those rows
'sending', and the next run sends them again: up to a whole batch per connection. With it, the
next run marks every journaled row sent before it requeues the rest, so only a message whose
answer had not yet arrived (at most one per connection) can arrive twice.

Cost: one `write()` per message, no fsync. A write() reaches the kernel's page cache, which
survives the death of the process (kill -9, a crash, an OOM kill); only a power loss or a kernel
crash could lose the last lines, and that costs duplicates, never a lost reader. An fsync per
message would cap a send at the disk's flush rate (far below the ~2,000 msg/s we send).

On SQLite one process writes the journal at a time: every command that sends holds the
database lock (scheduling.election), so truncating after each committed batch cannot
drop another's lines. On a server database several workers of one machine send at once: each
process has its own journal (the pid in its name), and a journal whose process is gone is
applied by the next run on that machine (`Journal.orphans`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from syndicate import db
from syndicate.db import URL, Engine

log = logging.getLogger(__name__)

SUFFIX = ".accepted-journal"


@dataclass(frozen=True)
class Accepted:
    delivery_id: int
    message_id: str
    detail: str


def path_for(url: URL) -> Path | None:
    """Next to a SQLite file; for a server database (PostgreSQL), in this machine's state folder
    under a name derived from the URL and this process's pid. None for an in-memory database,
    which dies with us."""
    path = db.engine.companion_path(url, SUFFIX)
    if path is None or url.get_backend_name() == "sqlite":
        return path
    return path.with_name(f"{path.name.removesuffix(SUFFIX)}.{os.getpid()}{SUFFIX}")


class Journal:
    """Append-only and thread-safe (SMTP connections answer from several threads)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fd: int | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_engine(cls, engine: Engine) -> Journal:
        return cls(path_for(engine.url))

    def orphans(self) -> list[Journal]:
        """The journals other processes of this machine left for the same server database
        and can no longer apply: their process is gone."""
        if self.path is None or self.path.name.count(".") < 2:
            return []
        stem = self.path.name.split(".", 1)[0]
        found = []
        for path in self.path.parent.glob(f"{stem}.*{SUFFIX}"):
            pid = path.name.removesuffix(SUFFIX).rsplit(".", 1)[-1]
            if path != self.path and pid.isdigit() and not _alive(int(pid)):
                found.append(Journal(path))
        return found

    def apply_orphans(self, engine: Engine) -> int:
        """Record as sent what dead workers of this machine journaled, then delete their
        journals; returns how many rows changed. Run before their rows are requeued."""
        changed = 0
        for orphan in self.orphans():
            changed += orphan.apply(engine)
            if orphan.path is not None:
                orphan.path.unlink(missing_ok=True)
                orphan.rewritten().unlink(missing_ok=True)  # a forget() it was killed in
        return changed

    def apply(self, engine: Engine) -> int:
        """Mark sent every claimed row this journal says the server accepted, then empty it."""
        entries = self.entries()
        if not entries:
            return 0
        with engine.begin() as conn:
            changed = db.deliveries.mark_accepted(
                conn, [(e.delivery_id, e.message_id, e.detail) for e in entries]
            )
        self.clear()
        return changed

    def open(self) -> None:
        if self.path is None or self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def note(self, delivery_id: int, message_id: str, detail: str) -> None:
        """Record that the server accepted this delivery; one write(), no fsync (see above)."""
        if self._fd is None:
            return
        line = _line(Accepted(delivery_id, message_id, detail))
        with self._lock:
            if self._fd is not None:  # forget() may have reopened it meanwhile
                os.write(self._fd, line)

    def entries(self) -> list[Accepted]:
        """Every complete line; a line cut short by a kill, or damaged, is skipped."""
        if self.path is None or not self.path.exists():
            return []
        found = []
        for line in self.path.read_bytes().decode(errors="replace").split("\n")[:-1]:
            parts = line.split("\t", 2)
            if len(parts) == 3 and parts[0].isdigit():
                found.append(Accepted(int(parts[0]), parts[1], parts[2]))
            elif line:
                log.warning("%s: skipped a damaged line %r", self.path, line[:80])
        return found

    def forget(self, recorded: Collection[int]) -> None:
        """These deliveries' outcomes are committed to the database: drop their lines and keep
        the others (those of the batch still being sent). The kept lines are written to a new
        file renamed over the journal, so a kill at any moment leaves one or the other whole."""
        if self.path is None:
            return
        with self._lock:
            kept = [e for e in self.entries() if e.delivery_id not in recorded]
            if not kept:
                self._truncate()
                return
            fresh = self.rewritten()
            fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"".join(_line(e) for e in kept))
            finally:
                os.close(fd)
            os.replace(fresh, self.path)
            if self._fd is not None:
                os.close(self._fd)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def rewritten(self) -> Path:
        """Where forget() writes the lines it keeps before renaming them over the journal."""
        assert self.path is not None
        return self.path.with_name(self.path.name + ".new")

    def clear(self) -> None:
        """Everything journaled is committed to the database: start empty."""
        if self.path is None:
            return
        with self._lock:
            self._truncate()

    def _truncate(self) -> None:
        assert self.path is not None
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
        elif self.path.exists():
            os.truncate(self.path, 0)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _line(entry: Accepted) -> bytes:
    return f"{entry.delivery_id}\t{_clean(entry.message_id)}\t{_clean(entry.detail)}\n".encode()


def _clean(text: str) -> str:
    return " ".join(text.split())[:500]
