"""Inbound messages as filed, and which messages were already seen."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from syndicate.db import times
from syndicate.db.engine import new_id
from syndicate.db.schema import inbound_seen, posts, recipients, replies

# What a person wrote, as opposed to what the machine handled (bounces, auto-replies,
# unsubscribes, approvals, spam, refused); only these are "new replies" for the author.
PERSONAL_REPLY_KINDS = ("comment", "editor_response", "unmatched")


def _unread_personal() -> Any:
    """Unread words from a person; an unmatched message with no words is not a new reply."""
    return (
        replies.c.read_at.is_(None)
        & replies.c.kind.in_(PERSONAL_REPLY_KINDS)
        & ((replies.c.kind != "unmatched") | (func.trim(replies.c.text, " \t\r\n") != ""))
    )


def recent_replies(conn: Connection, limit: int = 10) -> list[dict[str, Any]]:
    """The newest unread replies from people."""
    rows = conn.execute(
        select(
            replies.c.id,
            replies.c.received_at,
            replies.c.kind,
            replies.c.sender,
            replies.c.subject,
            posts.c.title,
        )
        .outerjoin(posts, posts.c.id == replies.c.post_id)
        .where(_unread_personal())
        .order_by(replies.c.received_at.desc(), replies.c.id.desc())
        .limit(limit)
    ).mappings()
    return [dict(row) for row in rows]


def count_replies(conn: Connection) -> dict[str, int]:
    """Unread replies from people, by kind."""
    rows = conn.execute(
        select(replies.c.kind, func.count()).where(_unread_personal()).group_by(replies.c.kind)
    )
    return {kind: count for kind, count in rows}


def mark_replies_read(conn: Connection, reply_ids: list[int] | None) -> int:
    """Mark these replies (None: every reply) read; returns how many were unread."""
    query = update(replies).where(replies.c.read_at.is_(None)).values(read_at=times.now())
    if reply_ids is not None:
        query = query.where(replies.c.id.in_(reply_ids))
    return conn.execute(query).rowcount


def existing_reply_ids(conn: Connection, reply_ids: list[int]) -> set[int]:
    return set(conn.execute(select(replies.c.id).where(replies.c.id.in_(reply_ids))).scalars())


def reply_seen(conn: Connection, keys: list[str]) -> int | None:
    """The reply already recorded under any of these keys (Message-ID, digest), if any."""
    keys = [k for k in keys if k]
    if not keys:
        return None
    return conn.execute(
        select(inbound_seen.c.reply_id).where(inbound_seen.c.key.in_(keys)).limit(1)
    ).scalar_one_or_none()


def _storable(value: Any) -> Any:
    """Text without NUL: PostgreSQL's text columns refuse it (a hostile header or body can carry
    one); the raw bytes keep the message exactly as received."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def insert_reply(conn: Connection, values: dict[str, Any], seen_keys: list[str]) -> int:
    """Record one inbound message and the keys that recognise it if it comes again."""
    values = {name: _storable(value) for name, value in values.items()}
    reply_id = new_id(conn.execute(insert(replies).values(received_at=times.now(), **values)))
    for key in dict.fromkeys(k for k in seen_keys if k):
        conn.execute(insert(inbound_seen).values(key=key, reply_id=reply_id, seen_at=times.now()))
    return reply_id


def update_reply(conn: Connection, reply_id: int, **values: Any) -> None:
    values = {name: _storable(value) for name, value in values.items()}
    conn.execute(update(replies).where(replies.c.id == reply_id).values(**values))


def get_reply(conn: Connection, reply_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(replies).where(replies.c.id == reply_id)).mappings().first()
    return dict(row) if row else None


def list_replies(
    conn: Connection,
    post_id: int | None = None,
    kinds: list[str] | None = None,
    states: list[str] | None = None,
    limit: int | None = None,
    unread_only: bool = False,
) -> list[dict[str, Any]]:
    """Replies, newest first, with the post's title and link and the recipient's address."""
    query = (
        select(
            *[c for c in replies.columns if c.name != "raw"],
            posts.c.title.label("post_title"),
            posts.c.link.label("post_link"),
            posts.c.guid.label("post_guid"),
            recipients.c.email.label("recipient_email"),
            recipients.c.name.label("recipient_name"),
        )
        .outerjoin(posts, posts.c.id == replies.c.post_id)
        .outerjoin(recipients, recipients.c.id == replies.c.recipient_id)
        .order_by(replies.c.received_at.desc(), replies.c.id.desc())
    )
    if post_id is not None:
        query = query.where(replies.c.post_id == post_id)
    if kinds:
        query = query.where(replies.c.kind.in_(kinds))
    if states:
        query = query.where(replies.c.state.in_(states))
    if unread_only:
        query = query.where(replies.c.read_at.is_(None))
    if limit:
        query = query.limit(limit)
    return [dict(row) for row in conn.execute(query).mappings()]
