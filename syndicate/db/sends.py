"""Sends (one per post and channel) and the digest queue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, func, insert, select, update
from sqlalchemy.engine import Connection

from syndicate.db import times
from syndicate.db.engine import new_id
from syndicate.db.schema import deliveries, digest_posts, posts, sends
from syndicate.models import Channel, DeliveryState, SendState


@dataclass(frozen=True)
class Send:
    """One post going out on one channel (unique per post and channel)."""

    id: int
    post_id: int
    channel: Channel
    state: SendState
    scheduled_at: datetime
    embargo_until: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # The channel policy that scheduled it ("immediately", "cron: …", "digest: …", "manual",
    # or "by hand" for `syndicate schedule`).
    policy: str
    approval_requested_at: datetime | None
    approved_at: datetime | None
    approved_by: str
    embargo_broken_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.state in (SendState.DONE, SendState.CANCELLED)


@dataclass(frozen=True)
class SendListing(Send):
    """A send as `sends list` and `status` show it: with its post's title and its deliveries
    counted by state."""

    title: str
    guid: str
    counts: Mapping[DeliveryState, int]

    def count(self, *states: DeliveryState) -> int:
        return sum(self.counts.get(state, 0) for state in states)


@dataclass(frozen=True)
class QueuedPost:
    """A post waiting for the next digest."""

    post_id: int
    queued_at: datetime


def send_from_row(row: Any) -> Send:
    return Send(**_send_fields(row))


def _send_fields(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "post_id": row.post_id,
        "channel": Channel(row.channel),
        "state": SendState(row.state),
        "scheduled_at": times.as_utc(row.scheduled_at),
        "embargo_until": times.as_utc(row.embargo_until),
        "created_at": times.as_utc(row.created_at),
        "started_at": times.as_utc(row.started_at),
        "finished_at": times.as_utc(row.finished_at),
        "policy": row.policy,
        "approval_requested_at": times.as_utc(row.approval_requested_at),
        "approved_at": times.as_utc(row.approved_at),
        "approved_by": row.approved_by,
        "embargo_broken_at": times.as_utc(row.embargo_broken_at),
    }


def create_send(
    conn: Connection,
    post_id: int,
    channel: Channel,
    scheduled_at: datetime,
    embargo_until: datetime | None = None,
    *,
    state: SendState = SendState.SCHEDULED,
    policy: str = "",
) -> int | None:
    """Create the one send for (post, channel); None when it already exists."""
    exists = conn.execute(
        select(sends.c.id).where(sends.c.post_id == post_id, sends.c.channel == channel.value)
    ).first()
    if exists:
        return None
    result = conn.execute(
        insert(sends).values(
            post_id=post_id,
            channel=channel.value,
            state=state.value,
            scheduled_at=scheduled_at,
            embargo_until=embargo_until,
            created_at=times.now(),
            policy=policy,
            approved_by="",
        )
    )
    return new_id(result)


def due_sends(conn: Connection, at: datetime) -> list[Send]:
    """Scheduled sends whose time has come, plus any left 'sending' by an interrupted run.

    The embargo is not applied here: the scheduler asks scheduling/embargo.py, the one place that
    says what holds a reader edition back.
    """
    ready = (sends.c.state == SendState.SCHEDULED.value) & (sends.c.scheduled_at <= at)
    rows = conn.execute(
        select(sends)
        .where(ready | (sends.c.state == SendState.SENDING.value))
        .order_by(sends.c.scheduled_at, sends.c.id)
    )
    return [send_from_row(row) for row in rows]


def column_sends(conn: Connection, post_ids: set[int]) -> dict[int, Send]:
    """The column send of each of these posts that has one, by post id."""
    if not post_ids:
        return {}
    rows = conn.execute(
        select(sends).where(
            sends.c.channel == Channel.COLUMN.value, sends.c.post_id.in_(sorted(post_ids))
        )
    )
    return {int(row.post_id): send_from_row(row) for row in rows}


def claim_send(conn: Connection, send_id: int) -> bool:
    """Atomically move a scheduled (or interrupted) send to 'sending'; False if the author held
    or cancelled it in the meantime."""
    result = conn.execute(
        update(sends)
        .where(
            sends.c.id == send_id,
            sends.c.state.in_([SendState.SCHEDULED.value, SendState.SENDING.value]),
        )
        .values(
            state=SendState.SENDING.value, started_at=func.coalesce(sends.c.started_at, times.now())
        )
    )
    return bool(result.rowcount)


def update_send(conn: Connection, send_id: int, **values: Any) -> None:
    conn.execute(update(sends).where(sends.c.id == send_id).values(**values))


def find_send(conn: Connection, post_id: int, channel: Channel) -> Send | None:
    row = conn.execute(
        select(sends).where(sends.c.post_id == post_id, sends.c.channel == channel.value)
    ).first()
    return send_from_row(row) if row else None


def awaiting_preview(conn: Connection) -> list[Send]:
    """Manual sends whose preview has not reached the author yet."""
    rows = conn.execute(
        select(sends)
        .where(
            sends.c.state == SendState.AWAITING_APPROVAL.value,
            sends.c.approval_requested_at.is_(None),
        )
        .order_by(sends.c.id)
    )
    return [send_from_row(row) for row in rows]


def queue_for_digest(conn: Connection, post_id: int, found: datetime) -> None:
    if conn.execute(
        select(digest_posts.c.post_id).where(digest_posts.c.post_id == post_id)
    ).first():
        return
    conn.execute(insert(digest_posts).values(post_id=post_id, send_id=None, queued_at=found))


def digest_send_of(conn: Connection, post_id: int) -> int | None:
    """The digest send that carries (or carried) this post to readers, if any."""
    return conn.execute(
        select(digest_posts.c.send_id).where(
            digest_posts.c.post_id == post_id, digest_posts.c.send_id.is_not(None)
        )
    ).scalar_one_or_none()


def unqueue_digest(conn: Connection, post_id: int) -> None:
    """The author scheduled this post by hand: it no longer waits for the digest."""
    conn.execute(
        digest_posts.delete().where(
            digest_posts.c.post_id == post_id, digest_posts.c.send_id.is_(None)
        )
    )


def leave_digest(conn: Connection, post_id: int, send_id: int) -> None:
    """Take the post out of a (cancelled) digest send."""
    conn.execute(
        digest_posts.delete().where(
            digest_posts.c.post_id == post_id, digest_posts.c.send_id == send_id
        )
    )


def digest_queue(conn: Connection) -> list[QueuedPost]:
    rows = conn.execute(
        select(digest_posts.c.post_id, digest_posts.c.queued_at)
        .where(digest_posts.c.send_id.is_(None))
        .order_by(digest_posts.c.queued_at, digest_posts.c.post_id)
    )
    return [QueuedPost(row.post_id, times.as_utc(row.queued_at)) for row in rows]


def assign_digest(conn: Connection, post_ids: list[int], send_id: int) -> None:
    conn.execute(
        update(digest_posts)
        .where(digest_posts.c.post_id.in_(post_ids), digest_posts.c.send_id.is_(None))
        .values(send_id=send_id)
    )


def digest_members(conn: Connection, send_id: int) -> list[int]:
    return list(
        conn.execute(
            select(digest_posts.c.post_id)
            .where(digest_posts.c.send_id == send_id)
            .order_by(digest_posts.c.post_id)
        ).scalars()
    )


def last_digest_at(conn: Connection) -> datetime | None:
    value = conn.execute(
        select(func.max(sends.c.scheduled_at)).select_from(
            digest_posts.join(sends, sends.c.id == digest_posts.c.send_id)
        )
    ).scalar_one_or_none()
    return times.as_utc(value)


def get_send(conn: Connection, send_id: int) -> Send | None:
    row = conn.execute(select(sends).where(sends.c.id == send_id)).first()
    return send_from_row(row) if row else None


# The first key of pg_advisory_xact_lock(key, send id) while a run plans a send ("SYND").
PLANNING_LOCK = 0x53594E44


def lock_planning(conn: Connection, send_id: int) -> None:
    """Until the transaction ends no other run plans this send, nor counts its deliveries to
    mark it done: one started beside it waits, then finds the plan committed (PostgreSQL;
    SQLite has one writer at a time anyway). The send's row itself is not locked, so a hold or
    a cancel never waits for a plan."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(PLANNING_LOCK, send_id)))


def start_sending(conn: Connection, send_id: int, state_read: str) -> bool:
    """Mark the send 'sending' unless its state changed since it was read as `state_read`
    (a hold or a cancel while it was planned wins); False then."""
    result = conn.execute(
        update(sends)
        .where(sends.c.id == send_id, sends.c.state == state_read)
        .values(
            state=SendState.SENDING.value, started_at=func.coalesce(sends.c.started_at, times.now())
        )
    )
    return bool(result.rowcount)


def send_state(conn: Connection, send_id: int) -> SendState | None:
    value = conn.execute(select(sends.c.state).where(sends.c.id == send_id)).scalar_one_or_none()
    return SendState(value) if value is not None else None


def set_send_state(conn: Connection, send_id: int, state: SendState) -> None:
    values: dict[str, Any] = {"state": state.value}
    if state is SendState.SENDING:
        values["started_at"] = func.coalesce(sends.c.started_at, times.now())
    if state in (SendState.DONE, SendState.CANCELLED):
        values["finished_at"] = times.now()
    conn.execute(update(sends).where(sends.c.id == send_id).values(**values))


def list_sends(conn: Connection, limit: int = 50) -> list[SendListing]:
    counts = (
        select(
            deliveries.c.send_id,
            func.count().label("total"),
            *[
                func.sum((deliveries.c.state == state.value).cast(Integer)).label(state.value)
                for state in DeliveryState
            ],
        )
        .group_by(deliveries.c.send_id)
        .subquery()
    )
    query = (
        select(
            sends,
            posts.c.title,
            posts.c.guid,
            *[func.coalesce(counts.c[s.value], 0).label(f"n_{s.value}") for s in DeliveryState],
        )
        .join(posts, posts.c.id == sends.c.post_id)
        .outerjoin(counts, counts.c.send_id == sends.c.id)
        .order_by(sends.c.scheduled_at.desc(), sends.c.id.desc())
        .limit(limit)
    )
    return [
        SendListing(
            **_send_fields(row),
            title=row.title,
            guid=row.guid,
            counts={state: int(getattr(row, f"n_{state.value}")) for state in DeliveryState},
        )
        for row in conn.execute(query)
    ]


def ids_in_state(conn: Connection, state: SendState) -> list[int]:
    return list(conn.execute(select(sends.c.id).where(sends.c.state == state.value)).scalars())
