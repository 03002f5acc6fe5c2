"""The desk's account-wide login lock: wrong passwords from every address together, and how
long the account refuses attempts. One row, so every `syndicate serve` process shares it; each
change is one UPDATE, so two processes counting at once lose no count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, insert, select, update
from sqlalchemy.engine import Connection

from syndicate.db import times
from syndicate.db.engine import IntegrityError
from syndicate.db.schema import desk_login_lock as lock

ROW = 1


@dataclass(frozen=True)
class LoginLock:
    wrong: int  # wrong passwords in the current window
    window_started_at: datetime | None
    locked_until: datetime | None
    locks: int  # locks in a row, without a right password since

    def refused_until(self, at: datetime) -> datetime | None:
        return self.locked_until if self.locked_until and self.locked_until > at else None


def _ensure_row(conn: Connection) -> None:
    if conn.execute(select(lock.c.id).where(lock.c.id == ROW)).first() is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(lock).values(id=ROW, wrong=0, locks=0))
        except IntegrityError:
            pass  # another process made it first


def state(conn: Connection) -> LoginLock:
    row = conn.execute(select(lock).where(lock.c.id == ROW)).first()
    if row is None:
        return LoginLock(0, None, None, 0)
    return LoginLock(
        wrong=row.wrong,
        window_started_at=times.as_utc(row.window_started_at),
        locked_until=times.as_utc(row.locked_until),
        locks=row.locks,
    )


def count_wrong(
    conn: Connection, at: datetime, failures: int, window: timedelta, longest_windows: int
) -> datetime | None:
    """Count one wrong password; the end of the lock it started (None: it started none).

    The `failures`-th wrong password within `window` locks the account for `window`; each lock
    that follows another without a right password between lasts twice as long (at most
    `longest_windows` windows); after a quiet of that long, locks start small again.
    """
    _ensure_row(conn)
    fresh = lock.c.window_started_at.is_(None) | (lock.c.window_started_at <= at - window)
    conn.execute(
        update(lock)
        .where(lock.c.id == ROW)
        .values(
            wrong=case((fresh, 1), else_=lock.c.wrong + 1),
            window_started_at=case((fresh, at), else_=lock.c.window_started_at),
        )
    )
    # Only the request whose count reached the limit locks (the UPDATE's WHERE decides it).
    quiet = lock.c.locked_until.is_(None) | (lock.c.locked_until < at - window * longest_windows)
    locks_before = case((quiet, 0), else_=lock.c.locks)
    taken = conn.execute(
        update(lock)
        .where(lock.c.id == ROW, lock.c.wrong >= failures)
        .values(wrong=0, window_started_at=None, locks=locks_before + 1)
        .returning(lock.c.locks)
    ).scalar_one_or_none()
    if taken is None:
        return None
    until = at + window * min(2 ** (taken - 1), longest_windows)
    conn.execute(update(lock).where(lock.c.id == ROW).values(locked_until=until))
    return until


def reserve_check(
    conn: Connection, at: datetime, failures: int, window: timedelta, longest_windows: int
) -> datetime | None:
    """Reserve one password check for a client the lock holds: unless the account is locked
    now (then the end of that lock, nothing counted), count it as a wrong password before the
    password is checked (a right one then clears the count). Guesses sent at once are counted
    as they arrive, not after each waits its turn for the hash: the failures-th locks the rest.
    """
    open_now = lock.c.locked_until.is_(None) | (lock.c.locked_until <= at)
    # A write first: the row's lock (SQLite: the write lock) is taken before anything is read,
    # so two processes reserving at once take turns, and the second sees the first's lock.
    for _ in range(2):
        reserved = conn.execute(
            update(lock).where(lock.c.id == ROW, open_now).values(wrong=lock.c.wrong)
        ).rowcount
        if reserved:
            break
        until = state(conn).refused_until(at)
        if until is not None:
            return until
        # No row yet (the first attempt ever): make it, then reserve on it like the others;
        # counting without the row's lock would let guesses past a lock taken meanwhile.
        _ensure_row(conn)
    count_wrong(conn, at, failures, window, longest_windows)
    return None


def clear(conn: Connection) -> LoginLock:
    """Forget wrong passwords and locks (a right password, or `syndicate desk unlock`);
    returns what there was."""
    before = state(conn)
    conn.execute(
        update(lock)
        .where(lock.c.id == ROW)
        .values(wrong=0, window_started_at=None, locked_until=None, locks=0)
    )
    return before
