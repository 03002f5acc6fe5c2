"""One daemon per database: the lock held by whatever plans and sends (`syndicate run`,
`run --once`, `send`), elected through the database.

- **PostgreSQL** (any number of machines): a session-level advisory lock
  (`pg_try_advisory_lock`) held on a connection of its own for the process's life
  (`db.locks.ElectionSession`). The server frees it when that session ends, a kill -9 or a
  cut connection included, so a new daemon takes over at once; and no machine's own clock
  takes part. The lock row names the holder (host, pid, since), its heartbeat written and its
  age read by the database's `now()`.
- **SQLite** (one machine: the single-process mode): the lock row alone, renewed by a
  heartbeat and judged by the runtime's clock; a holder that missed `stale_after_missed`
  heartbeats, or whose pid no longer exists on this machine, is taken over.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from syndicate import db, machine
from syndicate.db import Engine, IntegrityError
from syndicate.db.locks import LockHolder
from syndicate.errors import SyndicateError

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


NAMING_TRIES, NAMING_PAUSE = 30, 0.1  # up to 3 s for a just-elected daemon to write its row


class LockHeld(SyndicateError):
    """Another daemon holds the database."""


class DaemonLock:
    """Taken at start, renewed by heartbeat, released at a clean stop (see the two kinds)."""

    def __init__(self, engine: Engine, heartbeat_seconds: float, stale_after_missed: int) -> None:
        self.engine = engine
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_after_missed = stale_after_missed
        self.owner = uuid.uuid4().hex
        self.held = False

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.heartbeat_seconds * self.stale_after_missed)

    def try_acquire(self) -> LockHolder | None:
        """None when we hold the lock now, else the live holder."""
        raise NotImplementedError

    def beat(self) -> bool:
        """Renew the lock; False when it was lost (this process must stop sending)."""
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def silent_for(self, holder: LockHolder) -> float:
        """Seconds since the holder's last heartbeat."""
        raise NotImplementedError

    @property
    def freed(self) -> str:
        """How a dead holder's lock is freed, for the refusal message."""
        raise NotImplementedError

    def describe(self, holder: LockHolder) -> str:
        if not holder.pid:  # elected a moment ago, its row not written yet
            return "another syndicate daemon (starting at this moment)"
        silent = self.silent_for(holder)
        hung = (
            f"; no heartbeat for {silent:.0f} s: it may be hung, stop it"
            if silent > self.stale_after.total_seconds()
            else ""
        )
        return (
            f"another syndicate daemon (pid {holder.pid} on {holder.host}, running since "
            f"{holder.acquired_at:%Y-%m-%d %H:%M} UTC, last heartbeat {silent:.0f} s ago{hung})"
        )

    def acquire(
        self, *, wait: bool = False, sleep: Callable[[float], object] | None = None
    ) -> None:
        """Take the lock, or raise LockHeld with who holds it (or, with wait, retry).

        `sleep` returning True (an Event's wait once it is set) stops the waiting.
        """
        pause = sleep or threading.Event().wait
        announced = False
        while True:
            holder = self.try_acquire()
            # Elected a moment ago, its row not written yet: ask again for a while, so the
            # refusal can name it.
            for _ in range(NAMING_TRIES):
                if holder is None or holder.pid:
                    break
                time.sleep(NAMING_PAUSE)
                holder = self.try_acquire()
            if holder is None:
                return
            message = self.describe(holder)
            if not wait:
                raise LockHeld(
                    f"{message} is using this database. Only one may run at a time: stop it "
                    f"first, or start this one with --wait to take over when it stops. "
                    f"{self.freed}"
                )
            if not announced:
                log.warning("%s is using this database; waiting for it to stop", message)
                announced = True
            if pause(self.heartbeat_seconds) is True:
                raise LockHeld("stopped while waiting for the other daemon")

    @contextmanager
    def held_while(
        self, *, wait: bool = False, stop: threading.Event | None = None
    ) -> Iterator[None]:
        """Hold the lock for a one-off run (`run --once`, `send`), renewing it in the
        background so a long send is never taken for a crashed one and run a second time.

        A lost lock (the PostgreSQL session cut, another daemon elected) sets `stop`, which the
        run checks between batches, and the block then ends in LockHeld, never as if it had
        held the lock throughout.
        """
        self.acquire(wait=wait)
        stopped = threading.Event()
        lost = threading.Event()

        def keep_beating() -> None:
            while not stopped.wait(self.heartbeat_seconds):
                if not self.beat():
                    log.error("the database lock was lost; stopping after the batch in flight")
                    lost.set()
                    if stop is not None:
                        stop.set()
                    return

        beater = threading.Thread(target=keep_beating, name="syndicate-heartbeat", daemon=True)
        beater.start()
        try:
            yield
        finally:
            stopped.set()
            beater.join()
            if not lost.is_set() and not self.beat():  # lost since the last heartbeat
                lost.set()
            self.release()
        if lost.is_set():
            raise LockHeld(
                "this run lost the database lock while it worked (its database session "
                "ended), so another daemon may have taken over: it stopped after the batch in "
                "flight; what is left resumes at the next run"
            )


def lock_for(
    engine: Engine,
    heartbeat_seconds: float = 30,
    stale_after_missed: int = 3,
    clock: Clock = db.now,
) -> DaemonLock:
    """The kind of lock this database elects its daemon with."""
    if engine.dialect.name == "postgresql":
        return ElectedLock(engine, heartbeat_seconds, stale_after_missed)
    return RowLock(engine, heartbeat_seconds, stale_after_missed, clock)


class ElectedLock(DaemonLock):
    """PostgreSQL: the advisory lock decides; the row names the holder, and its heartbeat's
    age by the database's clock tells a live holder from a hung one (which keeps the lock while
    its session lives: stop it)."""

    @property
    def freed(self) -> str:
        return "A daemon that dies (even by kill -9) frees the lock with its database session."

    def __init__(self, engine: Engine, heartbeat_seconds: float, stale_after_missed: int) -> None:
        super().__init__(engine, heartbeat_seconds, stale_after_missed)
        self.session = db.locks.ElectionSession(engine)

    def try_acquire(self) -> LockHolder | None:
        holder = self.session.try_elect(self.owner, machine.name(), os.getpid())
        self.held = holder is None
        return holder

    def beat(self) -> bool:
        self.held = self.session.beat(self.owner)
        return self.held

    def release(self) -> None:
        self.session.resign(self.owner)
        self.held = False

    def silent_for(self, holder: LockHolder) -> float:
        return self.session.silent_for(holder)


class RowLock(DaemonLock):
    """SQLite: the row and its heartbeat, judged by this process's clock (one machine)."""

    def __init__(
        self, engine: Engine, heartbeat_seconds: float, stale_after_missed: int, clock: Clock
    ) -> None:
        super().__init__(engine, heartbeat_seconds, stale_after_missed)
        self.clock = clock

    @property
    def freed(self) -> str:
        return (
            f"A crashed daemon's lock is released after {self.stale_after_missed} missed "
            f"heartbeats ({self.stale_after.total_seconds():.0f} s)."
        )

    def try_acquire(self) -> LockHolder | None:
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                holder = db.locks.try_lock(
                    conn, self.owner, machine.name(), os.getpid(), now, now - self.stale_after
                )
        except IntegrityError:
            # Another daemon inserted the lock row between our read and our insert.
            with self.engine.connect() as conn:
                holder = db.locks.lock_holder(conn)
            if holder is None:
                return self.try_acquire()
        if holder is not None and _gone_from_this_machine(holder):
            # Killed (kill -9, a crash) on this very machine: no need to wait for it to go
            # stale. Taking over is safe: its in-flight messages are requeued on resume.
            log.warning(
                "the lock's holder (pid %s on this machine) no longer exists; taking over",
                holder.pid,
            )
            with self.engine.begin() as conn:
                just_after = holder.heartbeat_at + timedelta(microseconds=1)
                holder = db.locks.try_lock(
                    conn, self.owner, machine.name(), os.getpid(), now, just_after
                )
        self.held = holder is None
        return holder

    def beat(self) -> bool:
        with self.engine.begin() as conn:
            self.held = db.locks.heartbeat(conn, self.owner, self.clock())
        return self.held

    def release(self) -> None:
        with self.engine.begin() as conn:
            db.locks.release_lock(conn, self.owner)
        self.held = False

    def silent_for(self, holder: LockHolder) -> float:
        return (self.clock() - holder.heartbeat_at).total_seconds()


def _gone_from_this_machine(holder: LockHolder) -> bool:
    if holder.host != machine.name() or holder.pid == os.getpid():
        return False
    return not machine.alive(holder.pid)
