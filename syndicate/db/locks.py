"""The daemon lock row: one daemon per database, kept alive by a heartbeat."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from syndicate.db import times
from syndicate.db.schema import daemon_lock


def lock_holder(conn: Connection, name: str = "daemon") -> dict[str, Any] | None:
    row = conn.execute(select(daemon_lock).where(daemon_lock.c.name == name)).mappings().first()
    if not row:
        return None
    holder = dict(row)
    holder["heartbeat_at"] = times.as_utc(holder["heartbeat_at"])
    holder["acquired_at"] = times.as_utc(holder["acquired_at"])
    return holder


def try_lock(
    conn: Connection,
    owner: str,
    host: str,
    pid: int,
    at: datetime,
    stale_before: datetime,
    name: str = "daemon",
) -> dict[str, Any] | None:
    """Take the lock (free, ours, or stale); returns None on success, else the live holder."""
    holder = lock_holder(conn, name)
    values = {"owner": owner, "host": host, "pid": pid, "acquired_at": at, "heartbeat_at": at}
    if holder is None:
        conn.execute(insert(daemon_lock).values(name=name, **values))
        return None
    if holder["owner"] != owner and holder["heartbeat_at"] > stale_before:
        return holder
    result = conn.execute(
        update(daemon_lock)
        .where(daemon_lock.c.name == name, daemon_lock.c.owner == holder["owner"])
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
