"""One delivery per recipient of a send: planning, claiming batches, recording outcomes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Text,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection

from syndicate.db import times
from syndicate.db.recipients import recipient_from_row
from syndicate.db.schema import deliveries, posts, recipients, sends
from syndicate.models import Channel, DeliveryState, Recipient, RecipientKind, RecipientStatus

# Recipients planned per statement: each INSERT … SELECT covers one range of recipient ids, so
# no statement (and no undo log) grows with the list.
PLAN_CHUNK = 10_000


def plan_deliveries(
    conn: Connection, send_id: int, kind: RecipientKind, *, chunk: int = PLAN_CHUNK
) -> int:
    """One pending delivery per active recipient of the send's audience; idempotent.

    Planned in chunks of `chunk` recipient ids, each one `INSERT … SELECT … WHERE NOT EXISTS`
    (on PostgreSQL also `ON CONFLICT DO NOTHING`): nothing passes through Python, and NOT
    EXISTS, not NOT IN, which degrades sharply on PostgreSQL once the list outgrows work_mem.
    Returns how many were added, counted (PostgreSQL gives -1 as the rowcount of an
    INSERT … SELECT).
    """
    audience = (
        recipients.c.kind == kind.value,
        recipients.c.status == RecipientStatus.ACTIVE.value,
    )
    low, high = conn.execute(
        select(func.min(recipients.c.id), func.max(recipients.c.id)).where(*audience)
    ).one()
    if low is None:
        return 0
    before = _planned(conn, send_id)
    for start in range(low, high + 1, chunk):
        _plan_range(conn, send_id, kind, start, start + chunk)
    return _planned(conn, send_id) - before


def _plan_range(conn: Connection, send_id: int, kind: RecipientKind, start: int, end: int) -> None:
    """Plan the audience's recipients with ids in [start, end)."""
    planned = (
        select(deliveries.c.id)
        .where(deliveries.c.send_id == send_id, deliveries.c.recipient_id == recipients.c.id)
        .exists()
    )
    candidates = select(
        literal(send_id, Integer),
        recipients.c.id,
        literal(DeliveryState.PENDING.value, String),
        literal(0, Integer),
        literal("", Text),
        literal(times.now(), DateTime(timezone=True)),
    ).where(
        recipients.c.kind == kind.value,
        recipients.c.status == RecipientStatus.ACTIVE.value,
        recipients.c.id >= start,
        recipients.c.id < end,
        ~planned,
    )
    columns = ["send_id", "recipient_id", "state", "attempts", "detail", "updated_at"]
    if conn.dialect.name == "postgresql":
        # Two workers planning at once: the second skips the rows the first inserted (and
        # waits for its commit) instead of failing on the unique (send_id, recipient_id).
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(
            pg_insert(deliveries).from_select(columns, candidates).on_conflict_do_nothing()
        )
    else:
        conn.execute(insert(deliveries).from_select(columns, candidates))


def _planned(conn: Connection, send_id: int) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(deliveries).where(deliveries.c.send_id == send_id)
        ).scalar_one()
    )


def database_now(conn: Connection) -> datetime:
    """The database server's clock (PostgreSQL's now()): every machine judges a claim by the
    same clock. SQLite is one machine's file: this process's clock (times.now)."""
    if conn.dialect.name == "postgresql":
        return times.as_utc(conn.execute(select(func.now())).scalar_one())
    return times.now()


def requeue(conn: Connection, send_id: int, gone: Callable[[str], bool]) -> tuple[int, int]:
    """Put back in the queue the rows whose claim can no longer finish; returns (returned,
    deferred).

    A claim can no longer finish when its lease has lapsed (by the database's clock), when
    `gone(claimed_by)` says its worker no longer runs (a process of this machine that died), or
    when it names no worker (a claim made before leases). A live worker's rows stay its own.
    Returned rows may have reached the server: at most these are sent twice. Deferred rows keep
    their back-off time (`next_attempt_at`) and are only counted.
    """
    now = database_now(conn)
    claimers = conn.execute(
        select(deliveries.c.claimed_by)
        .where(
            deliveries.c.send_id == send_id,
            deliveries.c.state == DeliveryState.SENDING.value,
            deliveries.c.claimed_until > now,
        )
        .distinct()
    ).scalars()
    dead = [claimer for claimer in claimers if claimer and gone(claimer)]
    result = conn.execute(
        update(deliveries)
        .where(
            deliveries.c.send_id == send_id,
            deliveries.c.state == DeliveryState.SENDING.value,
            or_(
                deliveries.c.claimed_by.is_(None),
                deliveries.c.claimed_until.is_(None),
                deliveries.c.claimed_until <= now,
                deliveries.c.claimed_by.in_(dead),
            ),
        )
        .values(
            state=DeliveryState.PENDING.value,
            claimed_by=None,
            claimed_until=None,
            updated_at=times.now(),
        )
    )
    deferred = conn.execute(
        select(func.count()).where(
            deliveries.c.send_id == send_id, deliveries.c.state == DeliveryState.DEFERRED.value
        )
    ).scalar_one()
    return max(int(result.rowcount or 0), 0), int(deferred)


def in_flight(conn: Connection, send_id: int) -> int:
    """Rows of the send claimed and not yet recorded, by any worker."""
    return int(
        conn.execute(
            select(func.count()).where(
                deliveries.c.send_id == send_id,
                deliveries.c.state == DeliveryState.SENDING.value,
            )
        ).scalar_one()
    )


def mark_accepted(conn: Connection, accepted: list[tuple[int, str, str]]) -> int:
    """Rows still 'sending' whose message the server accepted (journal.Journal: delivery id,
    Message-ID, server's answer) become sent; returns how many. Rows already recorded keep
    their state."""
    if not accepted:
        return 0
    stamp = times.now()
    result = conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id == bindparam("a_id"),
            deliveries.c.state == DeliveryState.SENDING.value,
        )
        .values(
            state=DeliveryState.SENT.value,
            detail=bindparam("a_detail"),
            message_id=bindparam("a_mid"),
            next_attempt_at=None,
            updated_at=stamp,
        ),
        [
            {"a_id": delivery_id, "a_detail": detail[:1000], "a_mid": mid or None}
            for delivery_id, mid, detail in accepted
        ],
    )
    # A count for the log only: some drivers give -1 for an executemany.
    return max(int(result.rowcount or 0), 0)


def claim_batch(
    conn: Connection,
    send_id: int,
    limit: int,
    at: datetime | None = None,
    *,
    claimer: str = "",
    lease: timedelta = timedelta(minutes=10),
) -> list[tuple[int, Recipient]]:
    """Mark up to `limit` pending (or deferred and due at `at`) deliveries as sending, claimed by
    `claimer` for `lease` (by the database's clock), and return them with their recipients,
    oldest first. An empty list means nothing is free for this worker now, not that the send
    is finished (other workers may hold rows).

    On PostgreSQL the rows are read FOR UPDATE SKIP LOCKED: workers claiming at the same moment
    take different rows instead of waiting for (or colliding on) the same first ones.
    Recipients who unsubscribed or bounced since the send was planned are marked skipped.
    """
    # Two queries, each walking the (send_id, state, id) index in order: one query with an OR
    # would sort every pending row for each batch (quadratic over a send).
    query = (
        select(deliveries.c.id.label("delivery_id"), recipients)
        .join(recipients, recipients.c.id == deliveries.c.recipient_id)
        .with_for_update(of=deliveries, skip_locked=True)  # SQLite: no clause, one writer
    )
    rows = list(
        conn.execute(
            query.where(
                deliveries.c.send_id == send_id, deliveries.c.state == DeliveryState.PENDING.value
            )
            .order_by(deliveries.c.id)
            .limit(limit)
        ).all()
    )
    if len(rows) < limit:
        rows += conn.execute(
            query.where(
                deliveries.c.send_id == send_id,
                deliveries.c.state == DeliveryState.DEFERRED.value,
                deliveries.c.next_attempt_at.is_(None)
                | (deliveries.c.next_attempt_at <= (at or times.now())),
            )
            .order_by(deliveries.c.id)
            .limit(limit - len(rows))
        ).all()
    claimed: list[tuple[int, Recipient]] = []
    skipped: list[int] = []
    for row in rows:
        if row.status != RecipientStatus.ACTIVE:
            skipped.append(row.delivery_id)
        else:
            claimed.append((row.delivery_id, recipient_from_row(row)))
    if skipped:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(skipped))
            .values(
                state=DeliveryState.SKIPPED.value, detail="no longer active", updated_at=times.now()
            )
        )
    if claimed:
        # Only rows still waiting are taken: should another process have claimed some in the
        # meantime, they are not returned here, so no message is sent twice.
        taken = set(
            conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id.in_([delivery_id for delivery_id, _ in claimed]),
                    deliveries.c.state.in_(
                        [DeliveryState.PENDING.value, DeliveryState.DEFERRED.value]
                    ),
                )
                .values(
                    state=DeliveryState.SENDING.value,
                    attempts=deliveries.c.attempts + 1,
                    updated_at=times.now(),
                    claimed_by=claimer or None,
                    claimed_until=database_now(conn) + lease,
                )
                .returning(deliveries.c.id)
            ).scalars()
        )
        claimed = [(delivery_id, r) for delivery_id, r in claimed if delivery_id in taken]
    return claimed


def delivered_recipient(conn: Connection, send_id: int, email: str) -> Recipient | None:
    """The recipient of this send with this address (any case), if the send went to them."""
    row = conn.execute(
        select(recipients)
        .join(deliveries, deliveries.c.recipient_id == recipients.c.id)
        .where(deliveries.c.send_id == send_id, recipients.c.email_key == email.strip().lower())
    ).first()
    return recipient_from_row(row) if row else None


def release_claimed(conn: Connection, delivery_ids: list[int]) -> None:
    """Undo a claim that was never sent: back to pending, the attempt not counted."""
    if delivery_ids:
        conn.execute(
            update(deliveries)
            .where(
                deliveries.c.id.in_(delivery_ids),
                deliveries.c.state == DeliveryState.SENDING.value,
            )
            .values(
                state=DeliveryState.PENDING.value,
                attempts=deliveries.c.attempts - 1,
                updated_at=times.now(),
            )
        )


def next_retry_at(conn: Connection, send_id: int) -> datetime | None:
    """The earliest time a deferred delivery of the send may be tried again."""
    value = conn.execute(
        select(func.min(deliveries.c.next_attempt_at)).where(
            deliveries.c.send_id == send_id, deliveries.c.state == DeliveryState.DEFERRED.value
        )
    ).scalar_one_or_none()
    return times.as_utc(value)


def attempts_of(conn: Connection, delivery_ids: list[int]) -> dict[int, int]:
    rows = conn.execute(
        select(deliveries.c.id, deliveries.c.attempts).where(deliveries.c.id.in_(delivery_ids))
    )
    return {delivery_id: attempts for delivery_id, attempts in rows}


def record_results(
    conn: Connection,
    results: list[tuple[int, DeliveryState, str, str | None, datetime | None]],
) -> None:
    """Store many outcomes in one statement: (delivery id, state, detail, Message-ID, retry at)."""
    if not results:
        return
    stamp = times.now()
    conn.execute(
        update(deliveries)
        .where(deliveries.c.id == bindparam("d_id"))
        .values(
            state=bindparam("d_state"),
            detail=bindparam("d_detail"),
            message_id=bindparam("d_mid"),
            next_attempt_at=bindparam("d_next"),
            updated_at=stamp,
        ),
        [
            {
                "d_id": delivery_id,
                "d_state": state.value,
                "d_detail": detail[:1000],
                "d_mid": mid,
                "d_next": next_at,
            }
            for delivery_id, state, detail, mid, next_at in results
        ],
    )


def delivery_counts(conn: Connection, send_id: int) -> dict[DeliveryState, int]:
    """How many deliveries of the send are in each state (states with none are absent)."""
    rows = conn.execute(
        select(deliveries.c.state, func.count())
        .where(deliveries.c.send_id == send_id)
        .group_by(deliveries.c.state)
    )
    return {DeliveryState(state): count for state, count in rows}


@dataclass(frozen=True)
class DeliveryRecord:
    """One recipient's delivery of a send, with the address it went to."""

    id: int
    send_id: int
    recipient_id: int
    email: str
    state: DeliveryState
    attempts: int
    message_id: str | None
    detail: str
    updated_at: datetime
    # When a deferred delivery may be tried again; None otherwise.
    next_attempt_at: datetime | None


def iter_deliveries(conn: Connection, send_id: int) -> Iterator[DeliveryRecord]:
    query = (
        select(deliveries, recipients.c.email)
        .join(recipients, recipients.c.id == deliveries.c.recipient_id)
        .where(deliveries.c.send_id == send_id)
        .order_by(deliveries.c.id)
    )
    for row in conn.execute(query):
        yield DeliveryRecord(
            id=row.id,
            send_id=row.send_id,
            recipient_id=row.recipient_id,
            email=row.email,
            state=DeliveryState(row.state),
            attempts=row.attempts,
            message_id=row.message_id,
            detail=row.detail,
            updated_at=times.as_utc(row.updated_at),
            next_attempt_at=times.as_utc(row.next_attempt_at),
        )


def delivery_address(conn: Connection, send_id: int, recipient_id: int) -> str | None:
    """The address one delivery went to, if that delivery exists."""
    return conn.execute(
        select(recipients.c.email)
        .select_from(deliveries.join(recipients, recipients.c.id == deliveries.c.recipient_id))
        .where(deliveries.c.send_id == send_id, deliveries.c.recipient_id == recipient_id)
    ).scalar_one_or_none()


def unsubscribed_since(conn: Connection, send_id: int, since: datetime) -> int:
    """Recipients this send reached who have unsubscribed (or bounced, complained) since."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(deliveries.join(recipients, recipients.c.id == deliveries.c.recipient_id))
            .where(
                deliveries.c.send_id == send_id,
                deliveries.c.state == DeliveryState.SENT.value,
                recipients.c.unsubscribed_at >= since,
            )
        ).scalar_one()
    )


@dataclass(frozen=True)
class DeliveryHistory:
    """One delivery to a recipient, with the send's channel and the post's title."""

    send_id: int
    state: DeliveryState
    detail: str
    updated_at: datetime
    channel: Channel
    post_id: int
    title: str


def history_of(conn: Connection, recipient_id: int, limit: int = 200) -> list[DeliveryHistory]:
    """The deliveries to one recipient, newest first."""
    rows = conn.execute(
        select(
            deliveries.c.send_id,
            deliveries.c.state,
            deliveries.c.detail,
            deliveries.c.updated_at,
            sends.c.channel,
            posts.c.id.label("post_id"),
            posts.c.title,
        )
        .join(sends, sends.c.id == deliveries.c.send_id)
        .join(posts, posts.c.id == sends.c.post_id)
        .where(deliveries.c.recipient_id == recipient_id)
        .order_by(deliveries.c.updated_at.desc())
        .limit(limit)
    )
    return [
        DeliveryHistory(
            row.send_id,
            DeliveryState(row.state),
            row.detail,
            times.as_utc(row.updated_at),
            Channel(row.channel),
            row.post_id,
            row.title,
        )
        for row in rows
    ]
