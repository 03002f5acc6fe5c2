"""A provider's rate limit shared by every worker: sending slots reserved atomically.

One `send_rates` row per limit holds the next free slot and the current hourly window, in
seconds by the database's clock (PostgreSQL's clock_timestamp(); on SQLite, one machine's file,
this machine's clock). A worker reserves slots in one short transaction: the row is locked
(`SELECT … FOR UPDATE` on PostgreSQL; on SQLite a write first takes the file's write lock), the
slots are counted out, the row is moved on. Two workers therefore never get the same slot, and
all of them together send at most `per_second` a second and `per_hour` an hour.
"""

from __future__ import annotations

import time

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from syndicate.db.schema import send_rates

HOUR = 3600.0


def clock(conn: Connection) -> float:
    """Seconds since the epoch by the database server's clock (SQLite: this machine's)."""
    if conn.dialect.name == "postgresql":
        return float(
            conn.execute(select(func.extract("epoch", func.clock_timestamp()))).scalar_one()
        )
    return time.time()


def reserve(
    conn: Connection,
    name: str,
    count: int,
    per_second: float,
    per_hour: int,
    latest: float | None = None,
) -> tuple[float, list[float]]:
    """Reserve `count` sending slots of the limit `name`; returns the database's clock now and
    the start of each slot by that clock, in order (a slot already due starts now). With
    `latest`, nothing is reserved (an empty list) when the first slot starts more than `latest`
    seconds from now. Call in its own short transaction: the row stays locked until it
    commits."""
    _lock_row(conn, name)
    row = conn.execute(select(send_rates).where(send_rates.c.name == name).with_for_update()).one()
    now = clock(conn)
    interval = 1.0 / per_second if per_second else 0.0
    at = max(now, row.next_slot)
    window_start, window_count = row.window_start, row.window_count
    slots: list[float] = []
    for _ in range(count):
        if per_hour:
            if at >= window_start + HOUR:
                window_start, window_count = at, 0
            if window_count >= per_hour:
                at = window_start + HOUR
                window_start, window_count = at, 0
            window_count += 1
        slots.append(at)
        at += interval
    if latest is not None and slots and slots[0] > now + latest:
        return now, []
    conn.execute(
        update(send_rates)
        .where(send_rates.c.name == name)
        .values(next_slot=at, window_start=window_start, window_count=window_count)
    )
    return now, slots


def _lock_row(conn: Connection, name: str) -> None:
    """Make sure the row exists; on SQLite, also take the write lock before reading it, so two
    processes cannot both read the same next slot."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(send_rates).values(name=name).on_conflict_do_nothing())
        return
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    conn.execute(sqlite_insert(send_rates).values(name=name).on_conflict_do_nothing())
    conn.execute(
        update(send_rates).where(send_rates.c.name == name).values(next_slot=send_rates.c.next_slot)
    )
