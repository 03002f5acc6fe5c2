"""Each change of a recipient's status, by whom and why: one person's history, complete
whichever way the change came (the author, the reader, a bounce, an import)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from syndicate.db import times
from syndicate.db.schema import recipient_status_changes as changes
from syndicate.models import RecipientStatus

HISTORY_LIMIT = 200


class ChangedBy(StrEnum):
    AUTHOR = "author"  # the desk, or the author's own command
    READER = "reader"  # their link, their reply, their opt-in, their complaint
    BOUNCE = "bounce"  # the mail system: bounces counted, a rejected delivery
    IMPORT = "import"  # another tool's export said so


@dataclass(frozen=True)
class StatusChange:
    id: int
    recipient_id: int
    at: datetime
    from_status: RecipientStatus
    to_status: RecipientStatus
    by: ChangedBy
    reason: str


@dataclass(frozen=True)
class NewChange:
    recipient_id: int
    from_status: RecipientStatus | str
    to_status: RecipientStatus | str
    by: ChangedBy
    reason: str = ""
    at: datetime | None = None


def by_default(to_status: RecipientStatus | str) -> ChangedBy:
    """Who made a suppression when the caller does not say: bounces are the mail system's,
    unsubscribes and complaints the reader's."""
    return (
        ChangedBy.BOUNCE
        if RecipientStatus(to_status) is RecipientStatus.BOUNCED
        else ChangedBy.READER
    )


def record(conn: Connection, found: Iterable[NewChange]) -> None:
    rows = [
        {
            "recipient_id": c.recipient_id,
            "at": c.at or times.now(),
            "from_status": RecipientStatus(c.from_status).value,
            "to_status": RecipientStatus(c.to_status).value,
            "by": ChangedBy(c.by).value,
            "reason": c.reason[:500],
        }
        for c in found
    ]
    if rows:
        conn.execute(insert(changes), rows)


def changes_of(
    conn: Connection, recipient_id: int, limit: int = HISTORY_LIMIT
) -> list[StatusChange]:
    """One recipient's status changes, oldest first (the newest `limit`)."""
    rows = conn.execute(
        select(changes)
        .where(changes.c.recipient_id == recipient_id)
        .order_by(changes.c.at.desc(), changes.c.id.desc())
        .limit(limit)
    ).all()
    return [
        StatusChange(
            id=row.id,
            recipient_id=row.recipient_id,
            at=times.as_utc(row.at),
            from_status=RecipientStatus(row.from_status),
            to_status=RecipientStatus(row.to_status),
            by=ChangedBy(row.by),
            reason=row.reason,
        )
        for row in reversed(rows)
    ]


def brought_back_by_author(conn: Connection, recipient_ids: list[int]) -> set[int]:
    """Those of `recipient_ids` whose newest status change is the author making them active
    again (a list that still says "unsubscribed" must not undo it)."""
    if not recipient_ids:
        return set()
    newest = (
        select(changes.c.recipient_id, func.max(changes.c.id).label("id"))
        .where(changes.c.recipient_id.in_(recipient_ids))
        .group_by(changes.c.recipient_id)
        .subquery()
    )
    rows = conn.execute(
        select(changes.c.recipient_id)
        .join(newest, newest.c.id == changes.c.id)
        .where(
            changes.c.by == ChangedBy.AUTHOR.value,
            changes.c.to_status == RecipientStatus.ACTIVE.value,
        )
    )
    return set(rows.scalars())
