"""Readers and editors, double opt-in requests and provider webhook events already applied."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection

from syndicate.db import status_changes, times
from syndicate.db.engine import new_id
from syndicate.db.schema import pending_confirmations, recipients, webhook_events
from syndicate.db.status_changes import ChangedBy, NewChange, by_default
from syndicate.models import Recipient, RecipientKind, RecipientStatus


@dataclass(frozen=True)
class RecipientRecord:
    """A recipient as stored: who, and whether and why they still receive."""

    id: int
    kind: RecipientKind
    email: str
    email_key: str
    name: str
    status: RecipientStatus
    fields: dict[str, str]
    created_at: datetime
    updated_at: datetime
    # "list" (the author's CSV), "import:mailchimp", "web" …
    source: str
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    unsubscribe_reason: str

    @property
    def active(self) -> bool:
        return self.status is RecipientStatus.ACTIVE

    def as_recipient(self) -> Recipient:
        return Recipient(self.id, self.kind, self.email, self.name, dict(self.fields))


@dataclass(frozen=True)
class PendingConfirmation:
    """A double opt-in request from the web form; its link names it by id and nonce."""

    id: int
    kind: RecipientKind
    email: str
    email_key: str
    name: str
    nonce: str
    requested_at: datetime
    confirmed_at: datetime | None = field(default=None)


def record_from_row(row: Any) -> RecipientRecord:
    return RecipientRecord(
        id=row.id,
        kind=RecipientKind(row.kind),
        email=row.email,
        email_key=row.email_key,
        name=row.name,
        status=RecipientStatus(row.status),
        fields=dict(row.fields or {}),
        created_at=times.as_utc(row.created_at),
        updated_at=times.as_utc(row.updated_at),
        source=row.source,
        confirmed_at=times.as_utc(row.confirmed_at),
        unsubscribed_at=times.as_utc(row.unsubscribed_at),
        unsubscribe_reason=row.unsubscribe_reason,
    )


def _find_row(conn: Connection, kind: RecipientKind, email: str) -> Any:
    key = email.strip().lower()
    return conn.execute(
        select(recipients).where(recipients.c.kind == kind.value, recipients.c.email_key == key)
    ).first()


def _insert_active(
    conn: Connection, kind: RecipientKind, email: str, name: str, **values: Any
) -> None:
    conn.execute(
        insert(recipients).values(
            kind=kind.value,
            email=email.strip(),
            email_key=email.strip().lower(),
            name=name,
            status=RecipientStatus.ACTIVE.value,
            fields=values.pop("fields", {}),
            created_at=times.now(),
            updated_at=times.now(),
            **values,
        )
    )


def upsert_recipient(
    conn: Connection, kind: RecipientKind, email: str, name: str, fields: dict[str, str]
) -> str:
    """Add or update a recipient from the author's list; returns 'added', 'updated' or 'same'.

    Status is never changed here: an address that unsubscribed or bounced stays that way even
    though it is still in the CSV.
    """
    row = _find_row(conn, kind, email)
    if row is None:
        _insert_active(conn, kind, email, name, fields=fields)
        return "added"
    if row.name == name and (row.fields or {}) == fields and row.email == email.strip():
        return "same"
    conn.execute(
        update(recipients)
        .where(recipients.c.id == row.id)
        .values(email=email.strip(), name=name, fields=fields, updated_at=times.now())
    )
    return "updated"


def recipient_from_row(row: Any) -> Recipient:
    return Recipient(
        id=row.id,
        kind=RecipientKind(row.kind),
        email=row.email,
        name=row.name,
        fields=dict(row.fields or {}),
    )


def get_recipient(conn: Connection, recipient_id: int) -> Recipient | None:
    row = conn.execute(select(recipients).where(recipients.c.id == recipient_id)).first()
    return recipient_from_row(row) if row else None


def find_recipient(conn: Connection, kind: RecipientKind, email: str) -> Recipient | None:
    """A recipient by address, whatever its case (used by previews)."""
    row = _find_row(conn, kind, email)
    return recipient_from_row(row) if row else None


def mark_recipient(
    conn: Connection,
    recipient_id: int,
    status: RecipientStatus,
    reason: str,
    at: datetime | None = None,
    by: ChangedBy | None = None,
) -> bool:
    """Unsubscribe, bounce or mark as complained; True when this changed the recipient, and
    then the change is in its history (`by` unless said: the reader's, a bounce the mail
    system's).

    A recipient already suppressed keeps its first status and reason.
    """
    result = conn.execute(
        update(recipients)
        .where(recipients.c.id == recipient_id, recipients.c.status == RecipientStatus.ACTIVE.value)
        .values(
            status=RecipientStatus(status).value,
            unsubscribed_at=at or times.now(),
            unsubscribe_reason=reason[:500],
            updated_at=times.now(),
        )
    )
    if not result.rowcount:
        return False
    change = NewChange(
        recipient_id, RecipientStatus.ACTIVE, status, by or by_default(status), reason, at
    )
    status_changes.record(conn, [change])
    return True


def recipient_row(conn: Connection, recipient_id: int) -> RecipientRecord | None:
    row = conn.execute(select(recipients).where(recipients.c.id == recipient_id)).first()
    return record_from_row(row) if row else None


def recipients_by_email(conn: Connection, email: str) -> list[RecipientRecord]:
    """Every recipient (reader and editor) with this address, case-insensitively."""
    rows = conn.execute(
        select(recipients)
        .where(recipients.c.email_key == email.strip().lower())
        .order_by(recipients.c.id)
    )
    return [record_from_row(row) for row in rows]


def recipient_keys(
    conn: Connection, kind: RecipientKind, keys: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """email_key → (id, email, name, status, fields) of one audience, for bulk merges: of the
    whole audience, or only of these address keys (a chunk of a list being merged)."""
    query = select(
        recipients.c.id,
        recipients.c.email_key,
        recipients.c.email,
        recipients.c.name,
        recipients.c.status,
        recipients.c.fields,
    ).where(recipients.c.kind == kind.value)
    if keys is not None:
        query = query.where(recipients.c.email_key.in_(keys))
    return {row["email_key"]: dict(row) for row in conn.execute(query).mappings()}


def insert_recipients(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Many new recipients in one statement; each dict has the recipients columns."""
    if rows:
        conn.execute(insert(recipients), rows)


def update_recipients(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Many updates in one executemany; each dict has `rid` and the columns to set."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(k for k in row if k != "rid")), []).append(row)
    # Bind names must differ from column names in an executemany UPDATE.
    for columns, batch in groups.items():
        conn.execute(
            update(recipients)
            .where(recipients.c.id == bindparam("rid"))
            .values({column: bindparam(f"new_{column}") for column in columns}),
            [{"rid": row["rid"], **{f"new_{c}": row[c] for c in columns}} for row in batch],
        )


def list_recipients(conn: Connection, kind: RecipientKind | None = None) -> list[RecipientRecord]:
    query = select(recipients).order_by(recipients.c.kind, recipients.c.email_key)
    if kind is not None:
        query = query.where(recipients.c.kind == kind.value)
    return [record_from_row(row) for row in conn.execute(query)]


def confirm_subscription(conn: Connection, kind: RecipientKind, email: str, name: str) -> str:
    """A confirmed opt-in: add the address or bring it back; returns 'added' or 'reactivated'.

    This is the only path that re-activates an unsubscribed or bounced address.
    """
    row = _find_row(conn, kind, email)
    if row is None:
        _insert_active(conn, kind, email, name, source="web", confirmed_at=times.now())
        return "added"
    conn.execute(
        update(recipients)
        .where(recipients.c.id == row.id)
        .values(
            status=RecipientStatus.ACTIVE.value,
            confirmed_at=times.now(),
            unsubscribed_at=None,
            unsubscribe_reason="",
            name=name or row.name,
            updated_at=times.now(),
        )
    )
    if row.status != RecipientStatus.ACTIVE:
        back = NewChange(
            row.id, row.status, RecipientStatus.ACTIVE, ChangedBy.READER, "confirmed by email"
        )
        status_changes.record(conn, [back])
    return "reactivated" if row.status != RecipientStatus.ACTIVE else "confirmed"


def add_pending_confirmation(
    conn: Connection, kind: RecipientKind, email: str, name: str, nonce: str
) -> int:
    result = conn.execute(
        insert(pending_confirmations).values(
            kind=kind.value,
            email=email.strip(),
            email_key=email.strip().lower(),
            name=name,
            nonce=nonce,
            requested_at=times.now(),
        )
    )
    return new_id(result)


def forget_pending_before(conn: Connection, before: datetime) -> int:
    """Drop unconfirmed requests older than `before`: their links have expired anyway."""
    result = conn.execute(
        pending_confirmations.delete().where(
            pending_confirmations.c.confirmed_at.is_(None),
            pending_confirmations.c.requested_at < before,
        )
    )
    return int(result.rowcount or 0)


def get_pending_confirmation(conn: Connection, pending_id: int) -> PendingConfirmation | None:
    row = conn.execute(
        select(pending_confirmations).where(pending_confirmations.c.id == pending_id)
    ).first()
    if row is None:
        return None
    return PendingConfirmation(
        id=row.id,
        kind=RecipientKind(row.kind),
        email=row.email,
        email_key=row.email_key,
        name=row.name,
        nonce=row.nonce,
        requested_at=times.as_utc(row.requested_at),
        confirmed_at=times.as_utc(row.confirmed_at),
    )


def mark_confirmed(conn: Connection, pending_id: int) -> None:
    conn.execute(
        update(pending_confirmations)
        .where(pending_confirmations.c.id == pending_id)
        .values(confirmed_at=times.now())
    )


def record_webhook_event(
    conn: Connection, event_id: str, event: str, email: str, recipient_id: int | None, outcome: str
) -> bool:
    """Remember a provider event; False when it was already recorded (a replay)."""
    seen = conn.execute(
        select(webhook_events.c.event_id).where(webhook_events.c.event_id == event_id)
    ).first()
    if seen:
        return False
    conn.execute(
        insert(webhook_events).values(
            event_id=event_id,
            event=event,
            email=email,
            recipient_id=recipient_id,
            outcome=outcome[:500],
            received_at=times.now(),
        )
    )
    return True


def webhook_event_seen(conn: Connection, event_id: str) -> bool:
    return (
        conn.execute(
            select(webhook_events.c.event_id).where(webhook_events.c.event_id == event_id)
        ).first()
        is not None
    )


def count_active(conn: Connection, kind: RecipientKind) -> int:
    """How many recipients of this audience a send would reach now."""
    return int(
        conn.execute(
            select(func.count()).where(
                recipients.c.kind == kind.value,
                recipients.c.status == RecipientStatus.ACTIVE.value,
            )
        ).scalar_one()
    )


def count_recipients(conn: Connection) -> dict[str, dict[str, int]]:
    """{kind: {status: n}}."""
    return _count_by(conn, recipients.c.status)


def _count_by(conn: Connection, column: Any) -> dict[str, dict[str, int]]:
    rows = conn.execute(
        select(recipients.c.kind, column, func.count()).group_by(recipients.c.kind, column)
    )
    counts: dict[str, dict[str, int]] = {}
    for kind, value, count in rows:
        counts.setdefault(kind, {})[value] = int(count)
    return counts


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
