"""Corrections and kills (syndicate/corrections/) and who got each: every query about them.

A correction row keeps both versions of the post it is about: `base` (what editors have: the
version first sent, or the one the last advisory carried) and `new` (what the advisory will
carry), so later polls and edits never lose what editors were told.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    func,
    insert,
    select,
    update,
)

from syndicate.corrections.rows import (
    OPEN,
    Correction,
    CorrectionAction,
    CorrectionState,
    Reached,
)
from syndicate.db import posts as posts_db
from syndicate.db import schema, times
from syndicate.db import sends as sends_db
from syndicate.db.engine import Connection
from syndicate.db.schema import correction_deliveries, corrections
from syndicate.db.sends import Send
from syndicate.models import Channel, DeliveryState, Post, Recipient, RecipientKind


def post_by_guid(conn: Connection, guid: str) -> Post | None:
    post_id = conn.execute(select(schema.posts.c.id).where(schema.posts.c.guid == guid)).scalar()
    return posts_db.get_post(conn, post_id) if post_id is not None else None


def _version(post: Post, row: Any, prefix: str) -> Post:
    return Post(
        guid=post.guid,
        title=row[f"{prefix}_title"],
        link=post.link,
        author=post.author,
        published=post.published,
        summary_html=row[f"{prefix}_summary_html"],
        content_html=row[f"{prefix}_content_html"],
        categories=post.categories,
        id=post.id,
    )


def _snapshot(prefix: str, post: Post) -> dict[str, str]:
    return {
        f"{prefix}_title": post.title,
        f"{prefix}_content_html": post.content_html,
        f"{prefix}_summary_html": post.summary_html,
    }


def _from_row(conn: Connection, row: Any) -> Correction:
    post = posts_db.get_post(conn, row["post_id"])
    assert post is not None
    return Correction(
        id=row["id"],
        post_id=row["post_id"],
        send_id=row["send_id"],
        action=CorrectionAction(row["action"]),
        state=CorrectionState(row["state"]),
        origin=row["origin"],
        created_at=times.as_utc(row["created_at"]),
        base=_version(post, row, "base"),
        new=_version(post, row, "new"),
        summary=row["summary"],
        details=tuple(row["details"] or ()),
        note=row["note"],
        reason=row["reason"],
        asked_at=times.as_utc(row["asked_at"]),
        approved_at=times.as_utc(row["approved_at"]),
        approved_by=row["approved_by"],
        sent_at=times.as_utc(row["sent_at"]),
        advisory=row["advisory"],
        version=row["version"],
        title=post.title,
    )


def create(
    conn: Connection,
    *,
    post_id: int,
    send_id: int,
    action: CorrectionAction,
    state: CorrectionState,
    origin: str,
    base: Post,
    new: Post,
    summary: str = "",
    details: tuple[str, ...] = (),
    reason: str = "",
    at: datetime,
) -> int:
    values = {
        "post_id": post_id,
        "send_id": send_id,
        "action": action.value,
        "state": state.value,
        "origin": origin,
        "created_at": at,
        "updated_at": at,
        "summary": summary,
        "details": list(details),
        "reason": reason,
        **_snapshot("base", base),
        **_snapshot("new", new),
    }
    if state is CorrectionState.APPROVED:
        values.update(approved_at=at, approved_by="auto")
    result = conn.execute(insert(corrections).values(**values))
    (new_id,) = result.inserted_primary_key or (None,)
    assert new_id is not None
    return int(new_id)


def revise(
    conn: Connection,
    correction_id: int,
    *,
    new: Post,
    summary: str,
    details: tuple[str, ...],
    at: datetime,
) -> None:
    """A further edit of a post whose correction is still open: the author is asked again."""
    conn.execute(
        update(corrections)
        .where(corrections.c.id == correction_id)
        .values(
            summary=summary,
            details=list(details),
            updated_at=at,
            asked_at=None,
            **_snapshot("new", new),
        )
    )


def set_state(conn: Connection, correction_id: int, state: CorrectionState, **values: Any) -> bool:
    """Move an open correction on; False when it was no longer open (someone else decided)."""
    result = conn.execute(
        update(corrections)
        .where(corrections.c.id == correction_id, corrections.c.state.in_(OPEN))
        .values(state=state.value, **values)
    )
    return result.rowcount == 1


def release(conn: Connection, correction_id: int) -> None:
    """A send that failed before anything was recorded: approved again, retried next tick."""
    conn.execute(
        update(corrections)
        .where(
            corrections.c.id == correction_id, corrections.c.state == CorrectionState.SENDING.value
        )
        .values(state=CorrectionState.APPROVED.value, claimed_by=None)
    )


def release_stale(conn: Connection, before: datetime, gone: Callable[[str], bool]) -> list[int]:
    """Corrections left `sending` since before `before`, or by a process `gone` says died:
    approved again (see control.tick)."""
    rows = conn.execute(
        select(corrections.c.id, corrections.c.claimed_by, corrections.c.updated_at).where(
            corrections.c.state == CorrectionState.SENDING.value
        )
    )
    stale = [
        row.id
        for row in rows
        if times.as_utc(row.updated_at) < before or (row.claimed_by and gone(row.claimed_by))
    ]
    for correction_id in stale:
        release(conn, correction_id)
    return stale


def finish(
    conn: Connection, correction_id: int, *, advisory: str, version: int, at: datetime
) -> None:
    conn.execute(
        update(corrections)
        .where(corrections.c.id == correction_id)
        .values(
            state=CorrectionState.SENT.value,
            sent_at=at,
            updated_at=at,
            advisory=advisory,
            version=version,
        )
    )


def set_reason(conn: Connection, correction_id: int, reason: str) -> None:
    conn.execute(update(corrections).where(corrections.c.id == correction_id).values(reason=reason))


def mark_asked(conn: Connection, correction_id: int, at: datetime) -> None:
    conn.execute(update(corrections).where(corrections.c.id == correction_id).values(asked_at=at))


def set_note(conn: Connection, correction_id: int, note: str) -> None:
    conn.execute(update(corrections).where(corrections.c.id == correction_id).values(note=note))


def get(conn: Connection, correction_id: int) -> Correction | None:
    row = (
        conn.execute(select(corrections).where(corrections.c.id == correction_id))
        .mappings()
        .first()
    )
    return _from_row(conn, row) if row else None


def listed(conn: Connection, *, open_only: bool = False, limit: int = 100) -> list[Correction]:
    query = (
        select(corrections)
        .where(corrections.c.state != CorrectionState.IGNORED.value)
        .order_by(corrections.c.id.desc())
        .limit(limit)
    )
    if open_only:
        query = query.where(corrections.c.state.in_(OPEN))
    return [_from_row(conn, row) for row in conn.execute(query).mappings()]


def open_for_post(conn: Connection, post_id: int, action: CorrectionAction) -> Correction | None:
    row = (
        conn.execute(
            select(corrections).where(
                corrections.c.post_id == post_id,
                corrections.c.action == action.value,
                corrections.c.state.in_(OPEN),
            )
        )
        .mappings()
        .first()
    )
    return _from_row(conn, row) if row else None


def first_ignored(conn: Connection, post_id: int) -> Correction | None:
    row = (
        conn.execute(
            select(corrections)
            .where(
                corrections.c.post_id == post_id,
                corrections.c.state == CorrectionState.IGNORED.value,
            )
            .order_by(corrections.c.id)
        )
        .mappings()
        .first()
    )
    return _from_row(conn, row) if row else None


def last_sent(conn: Connection, post_id: int) -> Correction | None:
    row = (
        conn.execute(
            select(corrections)
            .where(
                corrections.c.post_id == post_id, corrections.c.state == CorrectionState.SENT.value
            )
            .order_by(corrections.c.sent_at.desc(), corrections.c.id.desc())
        )
        .mappings()
        .first()
    )
    return _from_row(conn, row) if row else None


def killed(conn: Connection, post_id: int) -> bool:
    return (
        conn.execute(
            select(func.count()).where(
                corrections.c.post_id == post_id,
                corrections.c.action == CorrectionAction.KILL.value,
                corrections.c.state == CorrectionState.SENT.value,
            )
        ).scalar_one()
        > 0
    )


def sent_versions(conn: Connection, post_id: int) -> int:
    """How many advisories about this post went out (the next one is version this + 2)."""
    return int(
        conn.execute(
            select(func.count()).where(
                corrections.c.post_id == post_id, corrections.c.state == CorrectionState.SENT.value
            )
        ).scalar_one()
    )


def delivered_column(conn: Connection, post_id: int) -> Send | None:
    """The post's column send if at least one editor received it, else None."""
    send = sends_db.find_send(conn, post_id, Channel.COLUMN)
    if send is None:
        return None
    sent = conn.execute(
        select(func.count()).where(
            schema.deliveries.c.send_id == send.id,
            schema.deliveries.c.state == DeliveryState.SENT.value,
        )
    ).scalar_one()
    return send if sent else None


def delivered_posts(conn: Connection, since: datetime) -> list[tuple[Post, Send]]:
    """Posts whose column reached an editor since `since`, with that send."""
    sends = schema.sends
    rows = conn.execute(
        select(sends.c.post_id)
        .where(
            sends.c.channel == Channel.COLUMN.value,
            sends.c.started_at >= since,
            select(schema.deliveries.c.id)
            .where(
                schema.deliveries.c.send_id == sends.c.id,
                schema.deliveries.c.state == DeliveryState.SENT.value,
            )
            .exists(),
        )
        .order_by(sends.c.post_id)
    ).scalars()
    found = []
    for post_id in rows:
        post = posts_db.get_post(conn, post_id)
        send = sends_db.find_send(conn, post_id, Channel.COLUMN)
        if post is not None and send is not None:
            found.append((post, send))
    return found


def reached(
    conn: Connection,
    send_id: int,
    correction_ids: list[int],
    kind: RecipientKind = RecipientKind.EDITOR,
) -> list[Reached]:
    """Who received send `send_id` and is still active, with their Message-IDs: the original's,
    then those of the messages `correction_ids` sent them (in order)."""
    d, r, cd = schema.deliveries, schema.recipients, correction_deliveries
    rows = conn.execute(
        select(r, d.c.message_id.label("original_id"))
        .join(d, d.c.recipient_id == r.c.id)
        .where(
            d.c.send_id == send_id,
            d.c.state == DeliveryState.SENT.value,
            r.c.status == "active",
            r.c.kind == kind.value,
        )
        .order_by(r.c.id)
    ).mappings()
    later: dict[int, list[str]] = {}
    if correction_ids:
        for recipient_id, message_id in conn.execute(
            select(cd.c.recipient_id, cd.c.message_id)
            .where(cd.c.correction_id.in_(correction_ids), cd.c.state == DeliveryState.SENT.value)
            .order_by(cd.c.at, cd.c.id)
        ):
            later.setdefault(recipient_id, []).append(message_id)
    return [
        Reached(
            Recipient(
                row["id"],
                RecipientKind(row["kind"]),
                row["email"],
                row["name"],
                dict(row["fields"] or {}),
            ),
            tuple(m for m in (row["original_id"] or "", *later.get(row["id"], [])) if m),
        )
        for row in rows
    ]


def sent_ids(conn: Connection, post_id: int) -> list[int]:
    return list(
        conn.execute(
            select(corrections.c.id).where(
                corrections.c.post_id == post_id, corrections.c.state == CorrectionState.SENT.value
            )
        ).scalars()
    )


def record_delivery(
    conn: Connection,
    correction_id: int,
    recipient_id: int,
    message_id: str,
    state: DeliveryState,
    detail: str,
    at: datetime,
) -> None:
    """What the transport answered for one message; a retry updates the same row."""
    cd = correction_deliveries
    values = {"message_id": message_id, "state": state.value, "detail": detail, "at": at}
    done = conn.execute(
        update(cd)
        .where(cd.c.correction_id == correction_id, cd.c.recipient_id == recipient_id)
        .values(attempts=cd.c.attempts + 1, **values)
    )
    if done.rowcount == 0:
        conn.execute(
            insert(cd).values(correction_id=correction_id, recipient_id=recipient_id, **values)
        )


def deferred(conn: Connection, max_attempts: int) -> dict[int, frozenset[int]]:
    """Recipients whose message a sent correction must try again, by correction."""
    cd = correction_deliveries
    found: dict[int, set[int]] = {}
    for correction_id, recipient_id in conn.execute(
        select(cd.c.correction_id, cd.c.recipient_id).where(
            cd.c.state == DeliveryState.DEFERRED.value, cd.c.attempts < max_attempts
        )
    ):
        found.setdefault(correction_id, set()).add(recipient_id)
    return {k: frozenset(v) for k, v in found.items()}


def delivered_to(conn: Connection, correction_id: int) -> list[dict[str, Any]]:
    cd, r = correction_deliveries, schema.recipients
    rows = conn.execute(
        select(cd.c.recipient_id, r.c.email, cd.c.message_id, cd.c.state, cd.c.detail, cd.c.at)
        .join(r, r.c.id == cd.c.recipient_id)
        .where(cd.c.correction_id == correction_id)
        .order_by(cd.c.id)
    ).mappings()
    return [dict(row) for row in rows]
