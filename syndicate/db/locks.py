"""The daemon lock row: one daemon per database, kept alive by a heartbeat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

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
