"""The database: schema, migrations by version number, and every query the pipeline runs.

SQLAlchemy Core keeps SQL visible and works the same on SQLite (the default, in WAL mode so the
web app and the daemon can share it) and PostgreSQL.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from syndicate.models import (
    Channel,
    DeliveryState,
    Post,
    Recipient,
    RecipientKind,
    SendState,
)

SCHEMA_VERSION = 1

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

feed_state = Table(
    "feed_state",
    metadata,
    Column("source", Text, primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("initialized_at", DateTime(timezone=True)),
    Column("checked_at", DateTime(timezone=True)),
)

posts = Table(
    "posts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("guid", Text, nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("link", Text, nullable=False),
    Column("author", Text, nullable=False, default=""),
    Column("published", DateTime(timezone=True)),
    Column("summary_html", Text, nullable=False, default=""),
    Column("content_html", Text, nullable=False, default=""),
    Column("categories", JSON, nullable=False, default=list),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    # Back-catalogue posts found on the first run are recorded but never become sends.
    Column("eligible", Boolean, nullable=False),
)

recipients = Table(
    "recipients",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("email", Text, nullable=False),
    # Lower-cased address: the identity used for de-duplication and lookups.
    Column("email_key", Text, nullable=False),
    Column("name", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False, default="active"),
    Column("fields", JSON, nullable=False, default=dict),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("kind", "email_key"),
)

sends = Table(
    "sends",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("post_id", Integer, ForeignKey("posts.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("scheduled_at", DateTime(timezone=True), nullable=False),
    Column("embargo_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    UniqueConstraint("post_id", "channel"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("send_id", Integer, ForeignKey("sends.id"), nullable=False),
    Column("recipient_id", Integer, ForeignKey("recipients.id"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("message_id", Text),
    Column("detail", Text, nullable=False, default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # When a deferred delivery may be tried again (exponential back-off); NULL otherwise.
    Column("next_attempt_at", DateTime(timezone=True)),
    UniqueConstraint("send_id", "recipient_id"),
    Index("ix_deliveries_send_state", "send_id", "state", "id"),
)

replies = Table(
    "replies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("message_id", Text),
    Column("send_id", Integer, ForeignKey("sends.id")),
    Column("recipient_id", Integer, ForeignKey("recipients.id")),
    Column("post_id", Integer, ForeignKey("posts.id")),
    Column("sender", Text, nullable=False, default=""),
    Column("subject", Text, nullable=False, default=""),
    Column("text", Text, nullable=False, default=""),
    Column("raw", LargeBinary, nullable=False),
)


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def connect(url: str) -> Engine:
    """Open the database and create or migrate the schema."""
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    with engine.begin() as conn:
        metadata.create_all(conn)
        _migrate(conn)
    return engine


def _migrate(conn: Connection) -> None:
    version = get_meta(conn, "schema_version")
    if version is None:
        set_meta(conn, "schema_version", str(SCHEMA_VERSION))
        return
    if int(version) > SCHEMA_VERSION:
        raise RuntimeError(
            f"the database has schema version {version}, newer than this syndicate "
            f"({SCHEMA_VERSION}); upgrade syndicate"
        )
    # Future migrations step from int(version) up to SCHEMA_VERSION here.


def get_meta(conn: Connection, key: str) -> str | None:
    return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar_one_or_none()


def set_meta(conn: Connection, key: str, value: str) -> None:
    if get_meta(conn, key) is None:
        conn.execute(insert(meta).values(key=key, value=value))
    else:
        conn.execute(update(meta).where(meta.c.key == key).values(value=value))


def hmac_key(engine: Engine, from_env: bytes | None) -> bytes:
    """The token key: from the environment, else one generated once and kept in the database.

    Keeping a generated key lets the demo run with no secrets set while links stay valid across
    runs; setting the environment variable takes precedence.
    """
    if from_env:
        return from_env
    with engine.begin() as conn:
        stored = get_meta(conn, "generated_hmac_key")
        if stored is None:
            stored = secrets.token_hex(32)
            set_meta(conn, "generated_hmac_key", stored)
    return stored.encode()


# --- feed state -------------------------------------------------------------------------------


def get_feed_state(conn: Connection, source: str) -> dict[str, Any] | None:
    row = conn.execute(select(feed_state).where(feed_state.c.source == source)).mappings().first()
    return dict(row) if row else None


def save_feed_state(
    conn: Connection, source: str, etag: str | None, last_modified: str | None, initialized: bool
) -> None:
    values = {"etag": etag, "last_modified": last_modified, "checked_at": now()}
    if get_feed_state(conn, source) is None:
        conn.execute(
            insert(feed_state).values(
                source=source, initialized_at=now() if initialized else None, **values
            )
        )
    else:
        if initialized:
            values["initialized_at"] = func.coalesce(feed_state.c.initialized_at, now())
        conn.execute(update(feed_state).where(feed_state.c.source == source).values(**values))


# --- posts ------------------------------------------------------------------------------------


def known_guids(conn: Connection, guids: list[str]) -> set[str]:
    if not guids:
        return set()
    return set(conn.execute(select(posts.c.guid).where(posts.c.guid.in_(guids))).scalars())


def insert_post(conn: Connection, post: Post, eligible: bool) -> int:
    result = conn.execute(
        insert(posts).values(
            guid=post.guid,
            title=post.title,
            link=post.link,
            author=post.author,
            published=post.published,
            summary_html=post.summary_html,
            content_html=post.content_html,
            categories=list(post.categories),
            first_seen=now(),
            eligible=eligible,
        )
    )
    return int(result.inserted_primary_key[0])


def refresh_post(conn: Connection, post: Post) -> None:
    """Keep the stored copy of an edited post current; an edit never triggers a new send."""
    conn.execute(
        update(posts)
        .where(posts.c.guid == post.guid)
        .values(
            title=post.title,
            link=post.link,
            author=post.author,
            summary_html=post.summary_html,
            content_html=post.content_html,
            categories=list(post.categories),
        )
    )


def _post_from_row(row: Any) -> Post:
    return Post(
        id=row.id,
        guid=row.guid,
        title=row.title,
        link=row.link,
        author=row.author,
        published=as_utc(row.published),
        summary_html=row.summary_html,
        content_html=row.content_html,
        categories=tuple(row.categories or ()),
    )


def get_post(conn: Connection, post_id: int) -> Post | None:
    row = conn.execute(select(posts).where(posts.c.id == post_id)).first()
    return _post_from_row(row) if row else None


def find_post(conn: Connection, ref: str) -> Post | None:
    """A post by id, guid, link, or 'latest' (newest published, then newest seen)."""
    if ref == "latest":
        query = select(posts).order_by(
            posts.c.published.desc().nulls_last(), posts.c.first_seen.desc(), posts.c.id.desc()
        )
    elif ref.isdigit():
        query = select(posts).where(posts.c.id == int(ref))
    else:
        query = select(posts).where((posts.c.guid == ref) | (posts.c.link == ref))
    row = conn.execute(query.limit(1)).first()
    return _post_from_row(row) if row else None


def list_posts(conn: Connection, limit: int = 20) -> list[Post]:
    rows = conn.execute(
        select(posts)
        .order_by(posts.c.published.desc().nulls_last(), posts.c.id.desc())
        .limit(limit)
    )
    return [_post_from_row(row) for row in rows]


# --- recipients -------------------------------------------------------------------------------


def upsert_recipient(
    conn: Connection, kind: RecipientKind, email: str, name: str, fields: dict[str, str]
) -> str:
    """Add or update a recipient from the author's list; returns 'added', 'updated' or 'same'.

    Status is never changed here: an address that unsubscribed or bounced stays that way even
    though it is still in the CSV.
    """
    key = email.strip().lower()
    row = conn.execute(
        select(recipients).where(recipients.c.kind == kind.value, recipients.c.email_key == key)
    ).first()
    if row is None:
        conn.execute(
            insert(recipients).values(
                kind=kind.value,
                email=email.strip(),
                email_key=key,
                name=name,
                status="active",
                fields=fields,
                created_at=now(),
                updated_at=now(),
            )
        )
        return "added"
    if row.name == name and (row.fields or {}) == fields and row.email == email.strip():
        return "same"
    conn.execute(
        update(recipients)
        .where(recipients.c.id == row.id)
        .values(email=email.strip(), name=name, fields=fields, updated_at=now())
    )
    return "updated"


def _recipient_from_row(row: Any) -> Recipient:
    return Recipient(
        id=row.id,
        kind=RecipientKind(row.kind),
        email=row.email,
        name=row.name,
        fields=dict(row.fields or {}),
    )


def get_recipient(conn: Connection, recipient_id: int) -> Recipient | None:
    row = conn.execute(select(recipients).where(recipients.c.id == recipient_id)).first()
    return _recipient_from_row(row) if row else None


def set_recipient_status(conn: Connection, recipient_id: int, status: str) -> None:
    conn.execute(
        update(recipients)
        .where(recipients.c.id == recipient_id)
        .values(status=status, updated_at=now())
    )


def count_recipients(conn: Connection) -> dict[str, dict[str, int]]:
    rows = conn.execute(
        select(recipients.c.kind, recipients.c.status, func.count()).group_by(
            recipients.c.kind, recipients.c.status
        )
    )
    counts: dict[str, dict[str, int]] = {}
    for kind, status, count in rows:
        counts.setdefault(kind, {})[status] = count
    return counts


# --- sends ------------------------------------------------------------------------------------


def create_send(
    conn: Connection,
    post_id: int,
    channel: Channel,
    scheduled_at: datetime,
    embargo_until: datetime | None = None,
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
            state=SendState.SCHEDULED.value,
            scheduled_at=scheduled_at,
            embargo_until=embargo_until,
            created_at=now(),
        )
    )
    return int(result.inserted_primary_key[0])


def due_sends(conn: Connection, at: datetime) -> list[dict[str, Any]]:
    """Sends whose time has come, plus any left 'sending' by an interrupted run."""
    rows = conn.execute(
        select(sends)
        .where(
            ((sends.c.state == SendState.SCHEDULED.value) & (sends.c.scheduled_at <= at))
            | (sends.c.state == SendState.SENDING.value)
        )
        .order_by(sends.c.scheduled_at, sends.c.id)
    ).mappings()
    return [dict(row) for row in rows]


def get_send(conn: Connection, send_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(sends).where(sends.c.id == send_id)).mappings().first()
    return dict(row) if row else None


def send_state(conn: Connection, send_id: int) -> str | None:
    return conn.execute(select(sends.c.state).where(sends.c.id == send_id)).scalar_one_or_none()


def set_send_state(conn: Connection, send_id: int, state: SendState) -> None:
    values: dict[str, Any] = {"state": state.value}
    if state is SendState.SENDING:
        values["started_at"] = func.coalesce(sends.c.started_at, now())
    if state in (SendState.DONE, SendState.CANCELLED):
        values["finished_at"] = now()
    conn.execute(update(sends).where(sends.c.id == send_id).values(**values))


def list_sends(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
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
    return [dict(row) for row in conn.execute(query).mappings()]


# --- deliveries -------------------------------------------------------------------------------


def plan_deliveries(conn: Connection, send_id: int, kind: RecipientKind) -> int:
    """One pending delivery per active recipient of the send's audience; idempotent."""
    already = select(deliveries.c.recipient_id).where(deliveries.c.send_id == send_id)
    candidates = select(
        literal(send_id, Integer),
        recipients.c.id,
        literal(DeliveryState.PENDING.value, String),
        literal(0, Integer),
        literal("", Text),
        literal(now(), DateTime(timezone=True)),
    ).where(
        recipients.c.kind == kind.value,
        recipients.c.status == "active",
        recipients.c.id.not_in(already),
    )
    result = conn.execute(
        insert(deliveries).from_select(
            ["send_id", "recipient_id", "state", "attempts", "detail", "updated_at"], candidates
        )
    )
    return int(result.rowcount or 0)


def requeue(conn: Connection, send_id: int) -> tuple[int, int]:
    """Put deliveries interrupted in flight back in the queue; returns (in_flight, deferred).

    Deliveries left 'sending' by a crash may have reached the server: at most these are sent
    twice. Deferred deliveries keep their back-off time (`next_attempt_at`) and are only counted.
    """
    result = conn.execute(
        update(deliveries)
        .where(deliveries.c.send_id == send_id, deliveries.c.state == DeliveryState.SENDING.value)
        .values(state=DeliveryState.PENDING.value, updated_at=now())
    )
    deferred = conn.execute(
        select(func.count()).where(
            deliveries.c.send_id == send_id, deliveries.c.state == DeliveryState.DEFERRED.value
        )
    ).scalar_one()
    return int(result.rowcount or 0), int(deferred)


def claim_batch(
    conn: Connection, send_id: int, limit: int, at: datetime | None = None
) -> list[tuple[int, Recipient]]:
    """Mark up to `limit` pending (or deferred and due at `at`) deliveries as sending and return
    them with their recipients, oldest first.

    Recipients who unsubscribed or bounced since the send was planned are marked skipped.
    """
    # Two queries, each walking the (send_id, state, id) index in order: one query with an OR
    # would sort every pending row for each batch (quadratic over a send).
    query = select(deliveries.c.id.label("delivery_id"), recipients).join(
        recipients, recipients.c.id == deliveries.c.recipient_id
    )
    rows = conn.execute(
        query.where(
            deliveries.c.send_id == send_id, deliveries.c.state == DeliveryState.PENDING.value
        )
        .order_by(deliveries.c.id)
        .limit(limit)
    ).all()
    if len(rows) < limit:
        rows += conn.execute(
            query.where(
                deliveries.c.send_id == send_id,
                deliveries.c.state == DeliveryState.DEFERRED.value,
                deliveries.c.next_attempt_at.is_(None)
                | (deliveries.c.next_attempt_at <= (at or now())),
            )
            .order_by(deliveries.c.id)
            .limit(limit - len(rows))
        ).all()
    claimed: list[tuple[int, Recipient]] = []
    skipped: list[int] = []
    for row in rows:
        if row.status != "active":
            skipped.append(row.delivery_id)
        else:
            claimed.append((row.delivery_id, _recipient_from_row(row)))
    if skipped:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(skipped))
            .values(state=DeliveryState.SKIPPED.value, detail="no longer active", updated_at=now())
        )
    if claimed:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_([delivery_id for delivery_id, _ in claimed]))
            .values(
                state=DeliveryState.SENDING.value,
                attempts=deliveries.c.attempts + 1,
                updated_at=now(),
            )
        )
    return claimed


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
                updated_at=now(),
            )
        )


def next_retry_at(conn: Connection, send_id: int) -> datetime | None:
    """The earliest time a deferred delivery of the send may be tried again."""
    value = conn.execute(
        select(func.min(deliveries.c.next_attempt_at)).where(
            deliveries.c.send_id == send_id, deliveries.c.state == DeliveryState.DEFERRED.value
        )
    ).scalar_one_or_none()
    return as_utc(value)


def attempts_of(conn: Connection, delivery_ids: list[int]) -> dict[int, int]:
    rows = conn.execute(
        select(deliveries.c.id, deliveries.c.attempts).where(deliveries.c.id.in_(delivery_ids))
    )
    return {delivery_id: attempts for delivery_id, attempts in rows}


def record_result(
    conn: Connection,
    delivery_id: int,
    state: DeliveryState,
    detail: str,
    message_id: str | None,
    next_attempt_at: datetime | None = None,
) -> None:
    record_results(conn, [(delivery_id, state, detail, message_id, next_attempt_at)])


def record_results(
    conn: Connection,
    results: list[tuple[int, DeliveryState, str, str | None, datetime | None]],
) -> None:
    """Store many outcomes in one statement: (delivery id, state, detail, Message-ID, retry at)."""
    if not results:
        return
    stamp = now()
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


def delivery_counts(conn: Connection, send_id: int) -> dict[str, int]:
    rows = conn.execute(
        select(deliveries.c.state, func.count())
        .where(deliveries.c.send_id == send_id)
        .group_by(deliveries.c.state)
    )
    return {state: count for state, count in rows}


def iter_deliveries(conn: Connection, send_id: int) -> Iterator[dict[str, Any]]:
    query = (
        select(deliveries, recipients.c.email)
        .join(recipients, recipients.c.id == deliveries.c.recipient_id)
        .where(deliveries.c.send_id == send_id)
        .order_by(deliveries.c.id)
    )
    for row in conn.execute(query).mappings():
        yield dict(row)


def count_replies(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(replies.c.kind, func.count()).group_by(replies.c.kind))
    return {kind: count for kind, count in rows}


def dumps(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)
