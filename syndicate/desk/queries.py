"""Everything the desk reads from or writes to the database, through syndicate.db (its own
queries in db/desk.py).

The author's password hash and the session epoch live in the key/value `meta` table; answers
and status changes in tables of their own (db/answers.py, db/status_changes.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syndicate import db
from syndicate.db import Connection, Engine
from syndicate.db.answers import Answer
from syndicate.db.deliveries import DeliveryHistory
from syndicate.db.locks import LockHolder
from syndicate.db.login_lock import LoginLock
from syndicate.db.recipients import RecipientRecord
from syndicate.db.replies import RecentReply, ReplyByRecipient, ReplyListing
from syndicate.db.sends import Send, SendListing
from syndicate.db.status_changes import StatusChange
from syndicate.desk import auth
from syndicate.models import (
    Channel,
    DeliveryState,
    Post,
    Recipient,
    RecipientKind,
    SendState,
)
from syndicate.scheduling import embargo as embargo_rule
from syndicate.scheduling import send_control as control
from syndicate.scheduling.timeparse import short
from syndicate.settings import Settings

PASSWORD_KEY = "desk_password_hash"
EPOCH_KEY = "desk_session_epoch"
DEVICE_EPOCH_KEY = "desk_device_epoch"


def password_hash(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return db.meta.get_meta(conn, PASSWORD_KEY)


def session_epoch(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return db.meta.get_meta(conn, EPOCH_KEY)


def set_password(engine: Engine, password: str) -> None:
    """A new password ends every open desk session and forgets every known device."""
    hashed = auth.hash_password(password)
    with engine.begin() as conn:
        db.meta.set_meta(conn, PASSWORD_KEY, hashed)
        db.meta.set_meta(conn, EPOCH_KEY, auth.new_epoch())
        db.meta.set_meta(conn, DEVICE_EPOCH_KEY, auth.new_epoch())


def device_epoch(engine: Engine) -> str:
    """The epoch known-device cookies must name (drawn on first use)."""
    with engine.begin() as conn:
        epoch = db.meta.get_meta(conn, DEVICE_EPOCH_KEY)
        if epoch is None:
            epoch = auth.new_epoch()
            db.meta.set_meta(conn, DEVICE_EPOCH_KEY, epoch)
        return epoch


def unlock(engine: Engine) -> LoginLock:
    """`syndicate desk unlock`: forget wrong passwords and locks; returns what there was."""
    with engine.begin() as conn:
        return db.login_lock.clear(conn)


def end_sessions(engine: Engine, *, forget_devices: bool = False) -> None:
    """End every desk session (and, `forget_devices`, every known device: logging out)."""
    with engine.begin() as conn:
        db.meta.set_meta(conn, EPOCH_KEY, auth.new_epoch())
        if forget_devices:
            db.meta.set_meta(conn, DEVICE_EPOCH_KEY, auth.new_epoch())


# --- home -------------------------------------------------------------------------------------

UPCOMING = (SendState.SCHEDULED.value, SendState.HELD.value, SendState.AWAITING_APPROVAL.value)


@dataclass
class SendRow:
    """One send as the desk shows it: the store's row, its times in the author's zone, and what
    holds it back."""

    row: SendListing
    waiting_until: str = ""
    waiting_for: str = ""
    bounced: int = 0
    unsubscribed_after: int = 0
    replies: int = 0

    def __getitem__(self, name: str) -> Any:
        if name.startswith("n_"):  # the templates' delivery counts: n_sent, n_failed …
            return self.row.count(DeliveryState(name.removeprefix("n_")))
        return getattr(self.row, name)

    @property
    def total(self) -> int:
        return self.row.count(*DeliveryState)

    @property
    def done(self) -> int:
        return self.row.count(DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.SKIPPED)


@dataclass
class Home:
    upcoming: list[SendRow]
    in_progress: list[SendRow]
    recent: list[SendRow]
    unread: list[RecentReply]
    unread_counts: dict[str, int]
    daemon: LockHolder | None
    recipients: dict[str, dict[str, int]]


def _outcomes(conn: Connection, rows: list[SendRow]) -> None:
    """Bounces, unsubscribes after the send, and replies, for each finished or running send."""
    found = db.desk.send_outcomes(conn, {r["id"]: r["started_at"] for r in rows})
    for send in rows:
        outcome = found[send["id"]]
        send.bounced = outcome["bounced"]
        send.replies = outcome["replies"]
        send.unsubscribed_after = outcome["unsubscribed_after"]


def home(engine: Engine, settings: Settings) -> Home:
    at = db.now()
    with engine.connect() as conn:
        sends = db.sends.list_sends(conn, 100)
        waits = control.waiting(
            conn, sends, at, respect_column=settings.channels.newsletter.respect_embargo
        )
        rows = []
        for send in sends:
            release = waits.get(send.id)
            rows.append(
                SendRow(
                    send,
                    waiting_until=short(release.until, settings.zone) if release else "",
                    waiting_for=release.whose if release else "",
                )
            )
        upcoming = sorted(
            (r for r in rows if r["state"] in UPCOMING),
            key=lambda r: db.as_utc(r["scheduled_at"]),
        )
        in_progress = [r for r in rows if r["state"] == SendState.SENDING.value]
        recent = [r for r in rows if r["state"] in control.FINISHED][:10]
        _outcomes(conn, in_progress + recent)
        return Home(
            upcoming=upcoming,
            in_progress=in_progress,
            recent=recent,
            unread=db.replies.recent_replies(conn, 10),
            unread_counts=db.replies.count_replies(conn),
            daemon=db.locks.running_daemon(conn),
            recipients=db.recipients.count_recipients(conn),
        )


def in_progress(engine: Engine) -> list[SendRow]:
    with engine.connect() as conn:
        rows = [SendRow(s) for s in db.sends.list_sends(conn, 100) if s.state is SendState.SENDING]
        _outcomes(conn, rows)
    return rows


# --- one post ---------------------------------------------------------------------------------


@dataclass
class PostPage:
    post: Post
    sends: dict[Channel, SendRow]
    editors: list[Recipient]
    column_embargo: datetime | None


def post_page(engine: Engine, settings: Settings, post_id: int) -> PostPage | None:
    at = db.now()
    with engine.connect() as conn:
        post = db.posts.get_post(conn, post_id)
        if post is None:
            return None
        found = [s for s in db.sends.list_sends(conn, 10_000) if s.post_id == post_id]
        waits = control.waiting(
            conn, found, at, respect_column=settings.channels.newsletter.respect_embargo
        )
        rows = {}
        for send in found:
            release = waits.get(send.id)
            rows[send.channel] = SendRow(
                send,
                waiting_until=short(release.until, settings.zone) if release else "",
                waiting_for=release.whose if release else "",
            )
        _outcomes(conn, list(rows.values()))
        editors = [
            row.as_recipient()
            for row in db.recipients.list_recipients(conn, RecipientKind.EDITOR)
            if row.active
        ]
        embargo = embargo_rule.draft_embargo(conn, post_id)
    return PostPage(post, rows, editors, embargo)


def send_row(engine: Engine, send_id: int) -> Send | None:
    with engine.connect() as conn:
        return db.sends.get_send(conn, send_id)


def delivery_counts(engine: Engine, send_id: int) -> dict[DeliveryState, int]:
    with engine.connect() as conn:
        return db.deliveries.delivery_counts(conn, send_id)


# --- replies ----------------------------------------------------------------------------------


def replies(
    engine: Engine, post_id: int | None, kind: str | None, unread_only: bool, limit: int = 200
) -> list[ReplyListing]:
    with engine.connect() as conn:
        return db.replies.list_replies(
            conn,
            post_id=post_id,
            kinds=[kind] if kind else None,
            unread_only=unread_only,
            limit=limit,
        )


def reply_kinds(engine: Engine) -> dict[str, tuple[int, int]]:
    """(all, unread) replies by kind."""
    with engine.connect() as conn:
        return db.desk.reply_kinds(conn)


def replied_posts(engine: Engine) -> list[tuple[int, str]]:
    """(id, title) of every post with a reply, newest post first."""
    with engine.connect() as conn:
        return db.desk.replied_posts(conn)


def reply(engine: Engine, reply_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = db.replies.get_reply(conn, reply_id)
        if row is None:
            return None
        post = db.posts.get_post(conn, row.post_id) if row.post_id else None
        recipient = (
            db.recipients.recipient_row(conn, row.recipient_id) if row.recipient_id else None
        )
        answers = db.answers.answers_to(conn, reply_id)
    return {
        **dataclasses.asdict(row),
        "post": post,
        "recipient": recipient,
        "answers": answers,
    }


def set_read(engine: Engine, reply_id: int, read: bool) -> None:
    with engine.begin() as conn:
        if read:
            db.replies.mark_replies_read(conn, [reply_id])
        else:
            db.replies.update_reply(conn, reply_id, read_at=None)


def record_answer(
    engine: Engine, reply_id: int, sent_at: datetime, to: str, message_id: str, body: str
) -> Answer:
    """The author's answer, kept with the reply (and the reply marked read)."""
    with engine.begin() as conn:
        answer = db.answers.record_answer(conn, reply_id, sent_at, to, message_id, body)
        db.replies.mark_replies_read(conn, [reply_id])
    return answer


# --- subscribers ------------------------------------------------------------------------------

SEARCH_LIMIT = 200


def people(
    engine: Engine, query: str, kind: str | None, status: str | None
) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return db.desk.search_recipients(conn, query, kind, status, SEARCH_LIMIT)


def people_counts(engine: Engine) -> dict[str, dict[str, dict[str, int]]]:
    """{"status": {kind: {status: n}}, "source": {kind: {source: n}}}."""
    with engine.connect() as conn:
        return {
            "status": db.recipients.count_recipients(conn),
            "source": db.desk.count_by_source(conn),
        }


@dataclass
class Person:
    row: RecipientRecord
    deliveries: list[DeliveryHistory]
    replies: list[ReplyByRecipient]
    changes: list[StatusChange]


def person(engine: Engine, recipient_id: int) -> Person | None:
    with engine.connect() as conn:
        row = db.recipients.recipient_row(conn, recipient_id)
        if row is None:
            return None
        return Person(
            row,
            db.deliveries.history_of(conn, recipient_id),
            db.replies.replies_from(conn, recipient_id),
            db.status_changes.changes_of(conn, recipient_id),
        )


# --- charts -----------------------------------------------------------------------------------


def list_changes(engine: Engine) -> tuple[list[datetime], list[datetime]]:
    """When readers joined and when they left (unsubscribed, bounced, complained)."""
    with engine.connect() as conn:
        return db.desk.reader_changes(conn)
