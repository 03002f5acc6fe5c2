"""What only the author's desk asks of the database: each send's outcome, replies by kind, a
subscriber search and counts by source, one person's deliveries and replies, the author's own
resubscribe, and when readers joined and left."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, func, select, update
from sqlalchemy.engine import Connection

from syndicate.db import times
from syndicate.db.replies import PERSONAL_REPLY_KINDS
from syndicate.db.schema import deliveries, posts, recipients, replies
from syndicate.models import DeliveryState, RecipientKind, RecipientStatus, ReplyKind

HISTORY_LIMIT = 200


def send_outcomes(
    conn: Connection, started: dict[int, datetime | None]
) -> dict[int, dict[str, int]]:
    """For each send id (with when it started): bounces, replies from people, and recipients it
    reached who unsubscribed after it started."""
    ids = list(started)
    if not ids:
        return {}
    by_send = select(replies.c.send_id, func.count()).where(replies.c.send_id.in_(ids))
    bounced: dict[int, int] = dict(
        conn.execute(  # type: ignore[arg-type]
            by_send.where(replies.c.kind == ReplyKind.BOUNCE.value).group_by(replies.c.send_id)
        ).all()
    )
    answered: dict[int, int] = dict(
        conn.execute(  # type: ignore[arg-type]
            by_send.where(replies.c.kind.in_(PERSONAL_REPLY_KINDS)).group_by(replies.c.send_id)
        ).all()
    )
    reached = deliveries.join(recipients, recipients.c.id == deliveries.c.recipient_id)
    found = {}
    for send_id, since in started.items():
        left = 0
        if since is not None:
            left = conn.execute(
                select(func.count())
                .select_from(reached)
                .where(
                    deliveries.c.send_id == send_id,
                    deliveries.c.state == DeliveryState.SENT.value,
                    recipients.c.unsubscribed_at >= since,
                )
            ).scalar_one()
        found[send_id] = {
            "bounced": int(bounced.get(send_id, 0)),
            "replies": int(answered.get(send_id, 0)),
            "unsubscribed_after": int(left),
        }
    return found


def reply_kinds(conn: Connection) -> dict[str, tuple[int, int]]:
    """(all, unread) replies by kind."""
    unread = func.sum(replies.c.read_at.is_(None).cast(Integer))
    rows = conn.execute(
        select(replies.c.kind, func.count(), unread)
        .group_by(replies.c.kind)
        .order_by(replies.c.kind)
    ).all()
    return {kind: (int(total), int(fresh or 0)) for kind, total, fresh in rows}


def replied_posts(conn: Connection) -> list[tuple[int, str]]:
    """(id, title) of every post with a reply, newest post first."""
    with_replies = select(replies.c.post_id).where(replies.c.post_id.is_not(None))
    rows = conn.execute(
        select(posts.c.id, posts.c.title)
        .where(posts.c.id.in_(with_replies))
        .order_by(posts.c.id.desc())
    ).all()
    return [(int(post_id), str(title)) for post_id, title in rows]


def _contains(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_recipients(
    conn: Connection, query: str, kind: str | None, status: str | None, limit: int
) -> list[dict[str, Any]]:
    """Recipients whose address or name contains `query` (any case), by kind and address."""
    found = select(recipients).order_by(recipients.c.kind, recipients.c.email_key).limit(limit)
    if query:
        pattern = _contains(query.lower())
        found = found.where(
            recipients.c.email_key.like(pattern, escape="\\")
            | func.lower(recipients.c.name).like(pattern, escape="\\")
        )
    if kind:
        found = found.where(recipients.c.kind == kind)
    if status:
        found = found.where(recipients.c.status == status)
    return [dict(row) for row in conn.execute(found).mappings()]


def count_by_source(conn: Connection) -> dict[str, dict[str, int]]:
    """{kind: {source: how many}}."""
    rows = conn.execute(
        select(recipients.c.kind, recipients.c.source, func.count()).group_by(
            recipients.c.kind, recipients.c.source
        )
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for kind, source, count in rows:
        counts.setdefault(kind, {})[source] = int(count)
    return counts


def reactivate(conn: Connection, recipient_id: int) -> bool:
    """The author brings someone back by hand; True when they were unsubscribed or bounced
    (never after a spam complaint)."""
    result = conn.execute(
        update(recipients)
        .where(
            recipients.c.id == recipient_id,
            # A complaint recorded since the caller looked is never undone here.
            recipients.c.status.not_in(
                [RecipientStatus.ACTIVE.value, RecipientStatus.COMPLAINED.value]
            ),
        )
        .values(
            status=RecipientStatus.ACTIVE.value,
            unsubscribed_at=None,
            unsubscribe_reason="",
            updated_at=times.now(),
        )
    )
    return bool(result.rowcount)


def reader_changes(conn: Connection) -> tuple[list[datetime], list[datetime]]:
    """When readers joined and when they left (unsubscribed, bounced, complained)."""
    reader = recipients.c.kind == RecipientKind.READER.value
    joined = conn.execute(select(recipients.c.created_at).where(reader)).scalars().all()
    left = (
        conn.execute(
            select(recipients.c.unsubscribed_at).where(
                reader, recipients.c.unsubscribed_at.is_not(None)
            )
        )
        .scalars()
        .all()
    )
    return [times.as_utc(t) for t in joined], [times.as_utc(t) for t in left]
