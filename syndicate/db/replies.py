"""Inbound messages as filed, and which messages were already seen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from syndicate.db import times
from syndicate.db.engine import new_id
from syndicate.db.schema import inbound_seen, posts, recipients, replies
from syndicate.models import ReplyKind, ReplyState


@dataclass(frozen=True)
class Reply:
    """An inbound message as filed (its raw bytes apart: see StoredReply)."""

    id: int
    received_at: datetime
    kind: ReplyKind
    state: ReplyState
    message_id: str | None
    send_id: int | None
    recipient_id: int | None
    post_id: int | None
    sender: str
    sender_name: str
    subject: str
    text: str
    source: str
    in_reply_to: str
    references: str
    # A bounce's failed addresses; `temporary` when every failure was temporary.
    addresses: tuple[str, ...]
    temporary: bool
    reason: str
    size: int
    forwarded_at: datetime | None
    detail: str
    # A bounce: True when tied to one of our deliveries (and scored), False when not.
    verified: bool | None
    read_at: datetime | None


@dataclass(frozen=True)
class StoredReply(Reply):
    raw: bytes


@dataclass(frozen=True)
class ReplyListing(Reply):
    """A reply with its post's title and link and the recipient's address (None if unknown)."""

    post_title: str | None
    post_link: str | None
    post_guid: str | None
    recipient_email: str | None
    recipient_name: str | None


@dataclass(frozen=True)
class RecentReply:
    id: int
    received_at: datetime
    kind: ReplyKind
    sender: str
    subject: str
    title: str | None  # the post's


def _reply_fields(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "received_at": times.as_utc(row.received_at),
        "kind": ReplyKind(row.kind),
        "state": ReplyState(row.state),
        "message_id": row.message_id,
        "send_id": row.send_id,
        "recipient_id": row.recipient_id,
        "post_id": row.post_id,
        "sender": row.sender,
        "sender_name": row.sender_name,
        "subject": row.subject,
        "text": row.text,
        "source": row.source,
        "in_reply_to": row.in_reply_to,
        "references": row.references,
        "addresses": tuple(row.addresses or ()),
        "temporary": bool(row.temporary),
        "reason": row.reason,
        "size": row.size,
        "forwarded_at": times.as_utc(row.forwarded_at),
        "detail": row.detail,
        "verified": row.verified,
        "read_at": times.as_utc(row.read_at),
    }


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


def recent_replies(conn: Connection, limit: int = 10) -> list[RecentReply]:
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
    )
    return [
        RecentReply(
            row.id,
            times.as_utc(row.received_at),
            ReplyKind(row.kind),
            row.sender,
            row.subject,
            row.title,
        )
        for row in rows
    ]


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


def get_reply(conn: Connection, reply_id: int) -> StoredReply | None:
    row = conn.execute(select(replies).where(replies.c.id == reply_id)).first()
    return StoredReply(**_reply_fields(row), raw=bytes(row.raw)) if row else None


def list_replies(
    conn: Connection,
    post_id: int | None = None,
    kinds: list[str] | None = None,
    states: list[str] | None = None,
    limit: int | None = None,
    unread_only: bool = False,
) -> list[ReplyListing]:
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
    return [
        ReplyListing(
            **_reply_fields(row),
            post_title=row.post_title,
            post_link=row.post_link,
            post_guid=row.post_guid,
            recipient_email=row.recipient_email,
            recipient_name=row.recipient_name,
        )
        for row in conn.execute(query)
    ]


def counts_by_send(conn: Connection, send_ids: list[int], kinds: list[str]) -> dict[int, int]:
    """How many replies of these kinds came back to each of these sends (absent: none)."""
    if not send_ids:
        return {}
    rows = conn.execute(
        select(replies.c.send_id, func.count())
        .where(replies.c.send_id.in_(send_ids), replies.c.kind.in_(kinds))
        .group_by(replies.c.send_id)
    )
    return {int(send_id): int(count) for send_id, count in rows}


@dataclass(frozen=True)
class ReplyByRecipient:
    id: int
    kind: ReplyKind
    subject: str
    received_at: datetime


def replies_from(conn: Connection, recipient_id: int, limit: int = 200) -> list[ReplyByRecipient]:
    """The replies tied to one recipient, newest first."""
    rows = conn.execute(
        select(replies.c.id, replies.c.kind, replies.c.subject, replies.c.received_at)
        .where(replies.c.recipient_id == recipient_id)
        .order_by(replies.c.received_at.desc())
        .limit(limit)
    )
    return [
        ReplyByRecipient(row.id, ReplyKind(row.kind), row.subject, times.as_utc(row.received_at))
        for row in rows
    ]
