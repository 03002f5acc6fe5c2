"""The daemon's election: the lock row (who holds it: owner, host, pid, since, last heartbeat)
and, on PostgreSQL, the session-level advisory lock that decides it.

SQLite (one machine, one process that sends): the row alone, judged by the caller's clock.
PostgreSQL (several machines): `ElectionSession` holds `pg_try_advisory_lock` on a connection
of its own for the daemon's life; the server frees it when that session ends, a kill -9
included. The row then only names the holder, its times written and read by the database's
`now()`, so no machine's own clock takes part in the decision.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import create_engine, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from syndicate.db import times
from syndicate.db.schema import daemon_lock


@dataclass(frozen=True)
class LockHolder:
    name: str
    owner: str
    host: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime


def lock_holder(conn: Connection, name: str = "daemon") -> LockHolder | None:
    row = conn.execute(select(daemon_lock).where(daemon_lock.c.name == name)).first()
    if not row:
        return None
    return LockHolder(
        name=row.name,
        owner=row.owner,
        host=row.host,
        pid=row.pid,
        acquired_at=times.as_utc(row.acquired_at),
        heartbeat_at=times.as_utc(row.heartbeat_at),
    )


def try_lock(
    conn: Connection,
    owner: str,
    host: str,
    pid: int,
    at: datetime,
    stale_before: datetime,
    name: str = "daemon",
) -> LockHolder | None:
    """Take the lock (free, ours, or stale); returns None on success, else the live holder."""
    holder = lock_holder(conn, name)
    values = {"owner": owner, "host": host, "pid": pid, "acquired_at": at, "heartbeat_at": at}
    if holder is None:
        conn.execute(insert(daemon_lock).values(name=name, **values))
        return None
    if holder.owner != owner and holder.heartbeat_at > stale_before:
        return holder
    result = conn.execute(
        update(daemon_lock)
        .where(daemon_lock.c.name == name, daemon_lock.c.owner == holder.owner)
        .values(**values)
    )
    return None if result.rowcount else lock_holder(conn, name)


def heartbeat(conn: Connection, owner: str, at: datetime, name: str = "daemon") -> bool:
    """Renew our lock; False when another daemon took it over (we were presumed dead)."""
    result = conn.execute(
        update(daemon_lock)
        .where(daemon_lock.c.name == name, daemon_lock.c.owner == owner)
        .values(heartbeat_at=at)
    )
    return bool(result.rowcount)


def release_lock(conn: Connection, owner: str, name: str = "daemon") -> None:
    conn.execute(
        daemon_lock.delete().where(daemon_lock.c.name == name, daemon_lock.c.owner == owner)
    )


# --- PostgreSQL: elected by an advisory lock ----------------------------------------------------

# One election per installation: the key is the database and schema the connection lives in
# (two installations in one PostgreSQL database, in two schemas, never block each other).
_ELECTION_KEY = text(
    "SELECT hashtextextended(current_database() || '.' || current_schema() || "
    "'.syndicate.' || :name, 0)"
)


# A bigint advisory key shows in pg_locks as classid (high 32 bits), objid (low), objsubid 1.
_STILL_HELD = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    " AND granted AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = :key"
)


# Held by any session: is someone elected now?
_ELECTED = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
    " AND ((classid::bigint << 32) | objid::bigint) = (SELECT hashtextextended("
    "current_database() || '.' || current_schema() || '.syndicate.' || :name, 0))"
)


def running_daemon(conn: Connection, name: str = "daemon") -> LockHolder | None:
    """The daemon holding the database now, for `syndicate status` and the desk (one answer
    for both). On PostgreSQL the row alone is not enough: a daemon killed (or whose session
    was cut) leaves its row until another is elected, so the advisory lock must be held too
    (pg_locks). On SQLite the row is the lock."""
    holder = lock_holder(conn, name)
    if holder is None or conn.dialect.name != "postgresql":
        return holder
    return holder if conn.execute(_ELECTED, {"name": name}).scalar_one() else None


def database_now(conn: Connection) -> datetime:
    """The database server's own time (UTC)."""
    return times.as_utc(conn.execute(select(func.now())).scalar_one())


class ElectionSession:
    """One connection of its own (not from the pool: a pooled connection would keep the lock
    after being handed back), on which this process holds the advisory lock while elected.

    Its methods are called from the daemon's thread and its heartbeat thread: one at a time.
    The connection is in autocommit mode: each statement commits (a transaction left open
    would hold the row's lock for the daemon's life).
    """

    def __init__(self, engine: Engine, name: str = "daemon") -> None:
        # The same URL (schema and all, through its options), one connection that is really
        # closed when we close it.
        self._engine = create_engine(engine.url, poolclass=NullPool)
        self._name = name
        self._conn: Connection | None = None
        self._key = 0
        self._serial = threading.Lock()

    def try_elect(self, owner: str, host: str, pid: int) -> LockHolder | None:
        """Win the election and write our row (None), or name who holds it."""
        with self._serial:
            if self._conn is not None:
                return None  # elected already
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                key = conn.execute(_ELECTION_KEY, {"name": self._name}).scalar_one()
                won = conn.execute(select(func.pg_try_advisory_lock(key))).scalar_one()
                if not won:
                    holder = lock_holder(conn, self._name) or self._starting(conn)
                    conn.close()
                    return holder
                # The row is ours to write: whoever wrote it before is no longer elected.
                conn.execute(delete(daemon_lock).where(daemon_lock.c.name == self._name))
                conn.execute(
                    insert(daemon_lock).values(
                        name=self._name,
                        owner=owner,
                        host=host,
                        pid=pid,
                        acquired_at=func.now(),
                        heartbeat_at=func.now(),
                    )
                )
            except BaseException:
                conn.close()
                raise
            self._conn, self._key = conn, key
            return None

    def _starting(self, conn: Connection) -> LockHolder:
        """The winner has the lock but has not written its row yet (a moment's race): pid 0."""
        moment = database_now(conn)
        return LockHolder(self._name, "", "", 0, moment, moment)

    def silent_for(self, holder: LockHolder) -> float:
        """Seconds since the holder's last heartbeat, by the database's clock."""
        with self._engine.connect() as conn:
            return (database_now(conn) - holder.heartbeat_at).total_seconds()

    def beat(self, owner: str) -> bool:
        """Renew our row's heartbeat (by the database's clock) on the elected session; False
        when that session is gone (the server restarted, the connection was cut): the
        advisory lock went with it and another daemon may be elected now."""
        with self._serial:
            if self._conn is None:
                return False
            try:
                self._conn.execute(
                    update(daemon_lock)
                    .where(daemon_lock.c.name == self._name, daemon_lock.c.owner == owner)
                    .values(heartbeat_at=func.now())
                )
                held = self._conn.execute(_STILL_HELD, {"key": self._key}).scalar_one()
            except DBAPIError:
                self._drop()
                return False
            return bool(held)

    def resign(self, owner: str) -> None:
        """Delete our row, unlock, and close the session (closing alone would free the lock)."""
        with self._serial:
            if self._conn is None:
                return
            try:
                release_lock(self._conn, owner, self._name)
                self._conn.execute(select(func.pg_advisory_unlock(self._key)))
            except DBAPIError:
                pass  # the session is gone, and the lock with it
            finally:
                self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
