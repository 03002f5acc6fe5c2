"""Where each inbox left off: the feed's HTTP validators and the IMAP resume point."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from syndicate.db import times
from syndicate.db.schema import feed_state, imap_state


@dataclass(frozen=True)
class FeedState:
    """What the last fetch of a feed left: its HTTP validators, and when it was first read
    (None: the first run has not happened) and last checked."""

    source: str
    etag: str | None
    last_modified: str | None
    initialized_at: datetime | None
    checked_at: datetime | None


def get_feed_state(conn: Connection, source: str) -> FeedState | None:
    row = conn.execute(select(feed_state).where(feed_state.c.source == source)).first()
    if row is None:
        return None
    return FeedState(
        source=row.source,
        etag=row.etag,
        last_modified=row.last_modified,
        initialized_at=times.as_utc(row.initialized_at),
        checked_at=times.as_utc(row.checked_at),
    )


def save_feed_state(
    conn: Connection, source: str, etag: str | None, last_modified: str | None, initialized: bool
) -> None:
    values: dict[str, Any] = {
        "etag": etag,
        "last_modified": last_modified,
        "checked_at": times.now(),
    }
    if get_feed_state(conn, source) is None:
        conn.execute(
            insert(feed_state).values(
                source=source, initialized_at=times.now() if initialized else None, **values
            )
        )
    else:
        if initialized:
            values["initialized_at"] = func.coalesce(feed_state.c.initialized_at, times.now())
        conn.execute(update(feed_state).where(feed_state.c.source == source).values(**values))


def get_imap_state(conn: Connection, mailbox: str) -> tuple[int, int] | None:
    row = conn.execute(select(imap_state).where(imap_state.c.mailbox == mailbox)).first()
    return (row.uidvalidity, row.last_uid) if row else None


def save_imap_state(conn: Connection, mailbox: str, uidvalidity: int, last_uid: int) -> None:
    values = {"uidvalidity": uidvalidity, "last_uid": last_uid, "updated_at": times.now()}
    if get_imap_state(conn, mailbox) is None:
        conn.execute(insert(imap_state).values(mailbox=mailbox, **values))
    else:
        conn.execute(update(imap_state).where(imap_state.c.mailbox == mailbox).values(**values))
