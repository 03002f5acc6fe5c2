"""The database: schema, migrations by version number, and every query the pipeline runs.

SQLAlchemy Core keeps SQL visible and works the same on SQLite (the default, in WAL mode so the
web app and the daemon can share it) and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pwd
import re
import secrets
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
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
    inspect,
    literal,
    select,
    update,
)
from sqlalchemy.engine import Connection, CursorResult, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from syndicate import tokens
from syndicate.models import (
    Channel,
    DeliveryState,
    Post,
    Recipient,
    RecipientKind,
    SendState,
)

# 1: the walking skeleton. 2: columns added for subscribers, replies, scheduling and delivery
# (additive: a version-1 database gets them with ALTER TABLE ADD COLUMN).
SCHEMA_VERSION = 3

log = logging.getLogger(__name__)

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
    # Where the address came from: "list" (the author's CSV), "import:mailchimp", "web" …
    Column("source", String(32), nullable=False, default="list"),
    # Set when the person confirmed a double opt-in from the web form.
    Column("confirmed_at", DateTime(timezone=True)),
    # Set with the status change to unsubscribed/bounced/complained, with what caused it.
    Column("unsubscribed_at", DateTime(timezone=True)),
    Column("unsubscribe_reason", Text, nullable=False, default=""),
    UniqueConstraint("kind", "email_key"),
)

# Double opt-in requests from the web form; the signed link names the row by id and nonce.
pending_confirmations = Table(
    "pending_confirmations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("email", Text, nullable=False),
    Column("email_key", Text, nullable=False),
    Column("name", Text, nullable=False, default=""),
    Column("nonce", String(32), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True)),
    # Ids are never reused after old requests are deleted: a link names exactly one request.
    sqlite_autoincrement=True,
)

# Provider webhook events already applied (SendGrid retries and may send an event twice).
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("event", String(32), nullable=False),
    Column("email", Text, nullable=False, default=""),
    Column("recipient_id", Integer),
    Column("outcome", Text, nullable=False, default=""),
    Column("received_at", DateTime(timezone=True), nullable=False),
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
    # The channel policy that scheduled it ("immediately", "cron: …", "digest: …", "manual",
    # or "by hand" for `syndicate schedule`).
    Column("policy", Text, nullable=False, default=""),
    # Manual approval: when the preview went to the author, when and how it was approved.
    Column("approval_requested_at", DateTime(timezone=True)),
    Column("approved_at", DateTime(timezone=True)),
    Column("approved_by", Text, nullable=False, default=""),
    # `syndicate send --break-embargo` sent this reader edition before its embargo, then.
    Column("embargo_broken_at", DateTime(timezone=True)),
    UniqueConstraint("post_id", "channel"),
)

# Posts waiting for the next digest (send_id NULL) and the digest that carried them.
digest_posts = Table(
    "digest_posts",
    metadata,
    Column("post_id", Integer, ForeignKey("posts.id"), primary_key=True),
    Column("send_id", Integer, ForeignKey("sends.id")),
    Column("queued_at", DateTime(timezone=True), nullable=False),
)

# One row while a daemon runs: a second daemon refuses (or waits) unless the heartbeat is stale.
daemon_lock = Table(
    "daemon_lock",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("owner", Text, nullable=False),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
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
    # Inbound replies (syndicate/inbound): where the message stands and why.
    Column("state", String(32), nullable=False, default="filed"),
    Column("source", String(32), nullable=False, default=""),
    Column("sender_name", Text, nullable=False, default=""),
    Column("in_reply_to", Text, nullable=False, default=""),
    Column("references", Text, nullable=False, default=""),
    # Failed addresses of a bounce; `temporary` is true when every failure was temporary.
    Column("addresses", JSON, nullable=False, default=list),
    Column("temporary", Boolean, nullable=False, default=False),
    Column("reason", Text, nullable=False, default=""),
    Column("size", Integer, nullable=False, default=0),
    Column("forwarded_at", DateTime(timezone=True)),
    Column("detail", Text, nullable=False, default=""),
    # A bounce: True when it came back to one of our deliveries (VERP address or our signed
    # Message-ID) and was scored; False when nothing ties it to a delivery (never scored).
    Column("verified", Boolean),
    # When the author marked it read (`syndicate replies read`); status counts unread ones.
    Column("read_at", DateTime(timezone=True)),
)

# One row per inbound message ever recorded: a message seen twice (IMAP re-fetch, MTA retry,
# SendGrid retry) is recognised by its Message-ID (or the digest of its bytes) and not re-filed.
inbound_seen = Table(
    "inbound_seen",
    metadata,
    Column("key", Text, primary_key=True),
    Column("reply_id", Integer, ForeignKey("replies.id"), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
)

# Mailman-style bounce scores per address (not per recipient row: one address can be a reader
# and an editor).
bounce_scores = Table(
    "bounce_scores",
    metadata,
    Column("email_key", Text, primary_key=True),
    Column("score", Float, nullable=False, default=0.0),
    Column("last_scored_on", Date),
    Column("last_bounce_at", DateTime(timezone=True), nullable=False),
    Column("suppressed_at", DateTime(timezone=True)),
)

bounce_events = Table(
    "bounce_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email_key", Text, nullable=False),
    Column("reply_id", Integer, ForeignKey("replies.id")),
    Column("temporary", Boolean, nullable=False),
    Column("counted", Boolean, nullable=False),
    Column("score_after", Float, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

# IMAP resume point per (server, user, folder): UIDs above last_uid are new while the
# folder's UIDVALIDITY stays the same.
imap_state = Table(
    "imap_state",
    metadata,
    Column("mailbox", Text, primary_key=True),
    Column("uidvalidity", Integer, nullable=False),
    Column("last_uid", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


def now() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
@overload
def as_utc(value: datetime | None) -> datetime | None: ...


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
        _keep_private(engine.url.database)
        event.listen(engine, "connect", _sqlite_pragmas)
    with engine.begin() as conn:
        metadata.create_all(conn)
        _migrate(conn)
    return engine


def _keep_private(database: str | None) -> None:
    """The SQLite file holds the token key and every reply: readable by its owner only.

    It is created 0600 whatever the umask, and SQLite gives its -wal and -shm files the mode of
    the database file. A file an older version left readable is narrowed.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    except OSError:
        return  # SQLite reports the folder or permission problem in its own words
    for companion in ("", "-wal", "-shm", "-journal"):
        file = Path(f"{path}{companion}")
        try:
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("%s is readable by other users and cannot be narrowed: %s", file, exc)


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
    # Also at the same version: a column added within a version (a database made by an
    # earlier build of this version) is added rather than failing every query that names it.
    added = _add_missing_columns(conn)
    if added:
        log.info("database upgraded to schema %s: added %s", SCHEMA_VERSION, ", ".join(added))
    set_meta(conn, "schema_version", str(SCHEMA_VERSION))


def _add_missing_columns(conn: Connection) -> list[str]:
    """Add every column the schema has and the database lacks (tables are made by create_all)."""
    inspector = inspect(conn)
    quote = conn.dialect.identifier_preparer.quote
    added = []
    for table in metadata.sorted_tables:
        existing = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in existing:
                continue
            ddl = f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} "
            ddl += column.type.compile(dialect=conn.dialect)
            default = _literal_default(column)
            if default is not None:
                ddl += f" DEFAULT {default}"
            conn.exec_driver_sql(ddl)
            added.append(f"{table.name}.{column.name}")
    return added


def _new_id(result: CursorResult[Any]) -> int:
    """The primary key a single-row INSERT gave its row."""
    key = result.inserted_primary_key
    if key is None:
        raise SQLAlchemyError("the insert returned no primary key")
    return int(key[0])


def _literal_default(column: Column) -> str | None:
    """A column's scalar Python default as SQL, so existing rows get it too."""
    default = column.default
    if not isinstance(default, ScalarElementColumnDefault):
        return None
    value = default.arg
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict | list):
        value = json.dumps(value)
    return "'" + str(value).replace("'", "''") + "'"


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
        key = from_env
    else:
        with engine.begin() as conn:
            stored = get_meta(conn, "generated_hmac_key")
            if stored is None:
                stored = secrets.token_hex(32)
                set_meta(conn, "generated_hmac_key", stored)
        key = stored.encode()
    _note_key_use(engine, key)
    return key


# --- which key each entrance uses ---------------------------------------------------------------
# Every entrance (daemon, web app, MTA pipe, a command in a shell) records a fingerprint of the
# token key it used, so `syndicate status` can tell when two of them sign with different keys
# (an MTA pipe without the daemon's environment files every token-only reply as unmatched).

_KEY_USE_PREFIX = "key_used_by:"
_KEY_USE_REFRESH_SECONDS = 3600


def key_fingerprint(key: bytes) -> str:
    """A short public name for a key: equal keys, equal names; the key cannot be read back."""
    return hashlib.sha256(b"syndicate token key fingerprint\0" + key).hexdigest()[:12]


def entrance_name() -> str:
    """This process as a sysadmin would name it: "syndicate inbound receive as nobody"."""
    words: list[str] = []
    args = iter(sys.argv[1:])
    for arg in args:
        if arg in ("-c", "--config"):
            next(args, None)
        elif arg.startswith("-"):
            if words:
                break
        elif re.fullmatch(r"[a-z][a-z-]*", arg) and len(words) < 2:
            words.append(arg)
        else:
            break
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = f"uid {os.geteuid()}"
    return " ".join(["syndicate", *words]) + f" as {user}"


def _note_key_use(engine: Engine, key: bytes) -> None:
    name = (_KEY_USE_PREFIX + entrance_name())[:64]
    fingerprint, at = key_fingerprint(key), now()
    try:
        with engine.begin() as conn:
            raw = get_meta(conn, name)
            known = json.loads(raw) if raw else {}
            last = datetime.fromisoformat(known["last"]) if "last" in known else None
            if (
                known.get("fingerprint") == fingerprint
                and last is not None
                and (at - last).total_seconds() < _KEY_USE_REFRESH_SECONDS
            ):
                return
            first = known["first"] if known.get("fingerprint") == fingerprint else at.isoformat()
            value = {"fingerprint": fingerprint, "first": first, "last": at.isoformat()}
            set_meta(conn, name, json.dumps(value))
    except (SQLAlchemyError, ValueError, KeyError) as exc:  # a note, never a reason to fail
        log.warning("could not record which token key this entrance uses: %s", exc)


def key_uses(conn: Connection, own_key: bytes | str | None = None) -> list[dict[str, Any]]:
    """Each entrance's last recorded key: name, fingerprint, first and last use (newest first);
    with `own_key`, this process too, as used now."""
    rows = conn.execute(
        select(meta.c.key, meta.c.value).where(meta.c.key.startswith(_KEY_USE_PREFIX))
    ).all()
    uses = []
    for name, raw in rows:
        try:
            value = json.loads(raw)
            uses.append(
                {
                    "entrance": name.removeprefix(_KEY_USE_PREFIX),
                    "fingerprint": value["fingerprint"],
                    "first": datetime.fromisoformat(value["first"]),
                    "last": datetime.fromisoformat(value["last"]),
                }
            )
        except (ValueError, KeyError, TypeError):
            continue
    if own_key:
        key = own_key.encode() if isinstance(own_key, str) else own_key
        at = now()
        own = {"entrance": entrance_name(), "fingerprint": key_fingerprint(key)}
        uses = [u for u in uses if u["entrance"] != own["entrance"]]
        uses.append({**own, "first": at, "last": at})
    return sorted(uses, key=lambda use: use["last"], reverse=True)


def key_mismatch(uses: list[dict[str, Any]], within_days: float = 30) -> list[dict[str, Any]]:
    """The entrances used within `within_days` of the newest use, when they disagree; else []."""
    if not uses:
        return []
    newest = uses[0]["last"]
    recent = [u for u in uses if (newest - u["last"]).total_seconds() <= within_days * 86400]
    return recent if len({u["fingerprint"] for u in recent}) > 1 else []


def installation_id(engine: Engine) -> str:
    """This database's random installation id (made once): part of every Message-ID, so two
    databases never reuse one (Gmail silently drops a message whose Message-ID it has seen)."""
    with engine.begin() as conn:
        stored = get_meta(conn, "installation_id")
        if stored is None:
            stored = tokens.new_installation_id()
            set_meta(conn, "installation_id", stored)
    return stored


def known_installation_id(conn: Connection) -> str:
    """The installation id if one was made, else "" (read-only: nothing of ours was sent)."""
    return get_meta(conn, "installation_id") or ""


# --- feed state -------------------------------------------------------------------------------


def get_feed_state(conn: Connection, source: str) -> dict[str, Any] | None:
    row = conn.execute(select(feed_state).where(feed_state.c.source == source)).mappings().first()
    return dict(row) if row else None


def save_feed_state(
    conn: Connection, source: str, etag: str | None, last_modified: str | None, initialized: bool
) -> None:
    values: dict[str, Any] = {"etag": etag, "last_modified": last_modified, "checked_at": now()}
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
    return _new_id(result)


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


def find_recipient_row(conn: Connection, kind: RecipientKind, email: str) -> Any:
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
            status="active",
            fields=values.pop("fields", {}),
            created_at=now(),
            updated_at=now(),
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
    row = find_recipient_row(conn, kind, email)
    if row is None:
        _insert_active(conn, kind, email, name, fields=fields)
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


def find_recipient(conn: Connection, kind: RecipientKind, email: str) -> Recipient | None:
    """A recipient by address, whatever its case (used by previews)."""
    row = find_recipient_row(conn, kind, email)
    return _recipient_from_row(row) if row else None


SUPPRESSED = ("unsubscribed", "bounced", "complained")


def mark_recipient(
    conn: Connection, recipient_id: int, status: str, reason: str, at: datetime | None = None
) -> bool:
    """Unsubscribe, bounce or mark as complained; True when this changed the recipient.

    A recipient already suppressed keeps its first status and reason.
    """
    result = conn.execute(
        update(recipients)
        .where(recipients.c.id == recipient_id, recipients.c.status == "active")
        .values(
            status=status,
            unsubscribed_at=at or now(),
            unsubscribe_reason=reason[:500],
            updated_at=now(),
        )
    )
    return bool(result.rowcount)


def recipient_row(conn: Connection, recipient_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(recipients).where(recipients.c.id == recipient_id)).mappings().first()
    return dict(row) if row else None


def recipients_by_email(conn: Connection, email: str) -> list[dict[str, Any]]:
    """Every recipient (reader and editor) with this address, case-insensitively."""
    rows = conn.execute(
        select(recipients).where(recipients.c.email_key == email.strip().lower())
    ).mappings()
    return [dict(row) for row in rows]


def recipient_keys(conn: Connection, kind: RecipientKind) -> dict[str, dict[str, Any]]:
    """email_key → (id, email, name, status, fields) of one audience, for bulk merges."""
    rows = conn.execute(
        select(
            recipients.c.id,
            recipients.c.email_key,
            recipients.c.email,
            recipients.c.name,
            recipients.c.status,
            recipients.c.fields,
        ).where(recipients.c.kind == kind.value)
    ).mappings()
    return {row["email_key"]: dict(row) for row in rows}


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


def list_recipients(conn: Connection, kind: RecipientKind | None = None) -> list[dict[str, Any]]:
    query = select(recipients).order_by(recipients.c.kind, recipients.c.email_key)
    if kind is not None:
        query = query.where(recipients.c.kind == kind.value)
    return [dict(row) for row in conn.execute(query).mappings()]


def confirm_subscription(conn: Connection, kind: RecipientKind, email: str, name: str) -> str:
    """A confirmed opt-in: add the address or bring it back; returns 'added' or 'reactivated'.

    This is the only path that re-activates an unsubscribed or bounced address.
    """
    row = find_recipient_row(conn, kind, email)
    if row is None:
        _insert_active(conn, kind, email, name, source="web", confirmed_at=now())
        return "added"
    conn.execute(
        update(recipients)
        .where(recipients.c.id == row.id)
        .values(
            status="active",
            confirmed_at=now(),
            unsubscribed_at=None,
            unsubscribe_reason="",
            name=name or row.name,
            updated_at=now(),
        )
    )
    return "reactivated" if row.status != "active" else "confirmed"


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
            requested_at=now(),
        )
    )
    return _new_id(result)


def forget_pending_before(conn: Connection, before: datetime) -> int:
    """Drop unconfirmed requests older than `before`: their links have expired anyway."""
    result = conn.execute(
        pending_confirmations.delete().where(
            pending_confirmations.c.confirmed_at.is_(None),
            pending_confirmations.c.requested_at < before,
        )
    )
    return int(result.rowcount or 0)


def get_pending_confirmation(conn: Connection, pending_id: int) -> dict[str, Any] | None:
    row = (
        conn.execute(select(pending_confirmations).where(pending_confirmations.c.id == pending_id))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def mark_confirmed(conn: Connection, pending_id: int) -> None:
    conn.execute(
        update(pending_confirmations)
        .where(pending_confirmations.c.id == pending_id)
        .values(confirmed_at=now())
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
            received_at=now(),
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
            created_at=now(),
            policy=policy,
            approved_by="",
        )
    )
    return _new_id(result)


def due_sends(conn: Connection, at: datetime) -> list[dict[str, Any]]:
    """Scheduled sends whose time has come, plus any left 'sending' by an interrupted run.

    The embargo is not applied here: the scheduler asks scheduling/embargo.py, the one place that
    says what holds a reader edition back.
    """
    ready = (sends.c.state == SendState.SCHEDULED.value) & (sends.c.scheduled_at <= at)
    rows = conn.execute(
        select(sends)
        .where(ready | (sends.c.state == SendState.SENDING.value))
        .order_by(sends.c.scheduled_at, sends.c.id)
    ).mappings()
    return [dict(row) for row in rows]


def column_sends(conn: Connection, post_ids: set[int]) -> dict[int, dict[str, Any]]:
    """The column send (id, state, embargo_until) of each of these posts that has one."""
    if not post_ids:
        return {}
    rows = conn.execute(
        select(sends.c.id, sends.c.post_id, sends.c.state, sends.c.embargo_until).where(
            sends.c.channel == Channel.COLUMN.value, sends.c.post_id.in_(sorted(post_ids))
        )
    ).mappings()
    return {int(row["post_id"]): dict(row) for row in rows}


def claim_send(conn: Connection, send_id: int) -> bool:
    """Atomically move a scheduled (or interrupted) send to 'sending'; False if the author held
    or cancelled it in the meantime."""
    result = conn.execute(
        update(sends)
        .where(
            sends.c.id == send_id,
            sends.c.state.in_([SendState.SCHEDULED.value, SendState.SENDING.value]),
        )
        .values(state=SendState.SENDING.value, started_at=func.coalesce(sends.c.started_at, now()))
    )
    return bool(result.rowcount)


def update_send(conn: Connection, send_id: int, **values: Any) -> None:
    conn.execute(update(sends).where(sends.c.id == send_id).values(**values))


def find_send(conn: Connection, post_id: int, channel: Channel) -> dict[str, Any] | None:
    row = (
        conn.execute(
            select(sends).where(sends.c.post_id == post_id, sends.c.channel == channel.value)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def awaiting_preview(conn: Connection) -> list[dict[str, Any]]:
    """Manual sends whose preview has not reached the author yet."""
    rows = conn.execute(
        select(sends)
        .where(
            sends.c.state == SendState.AWAITING_APPROVAL.value,
            sends.c.approval_requested_at.is_(None),
        )
        .order_by(sends.c.id)
    ).mappings()
    return [dict(row) for row in rows]


# --- digests ----------------------------------------------------------------------------------


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


def digest_queue(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(digest_posts.c.post_id, digest_posts.c.queued_at)
        .where(digest_posts.c.send_id.is_(None))
        .order_by(digest_posts.c.queued_at, digest_posts.c.post_id)
    ).mappings()
    return [dict(row) for row in rows]


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
    return as_utc(value)


# --- daemon lock ------------------------------------------------------------------------------


def lock_holder(conn: Connection, name: str = "daemon") -> dict[str, Any] | None:
    row = conn.execute(select(daemon_lock).where(daemon_lock.c.name == name)).mappings().first()
    if not row:
        return None
    holder = dict(row)
    holder["heartbeat_at"] = as_utc(holder["heartbeat_at"])
    holder["acquired_at"] = as_utc(holder["acquired_at"])
    return holder


def try_lock(
    conn: Connection,
    owner: str,
    host: str,
    pid: int,
    at: datetime,
    stale_before: datetime,
    name: str = "daemon",
) -> dict[str, Any] | None:
    """Take the lock (free, ours, or stale); returns None on success, else the live holder."""
    holder = lock_holder(conn, name)
    values = {"owner": owner, "host": host, "pid": pid, "acquired_at": at, "heartbeat_at": at}
    if holder is None:
        conn.execute(insert(daemon_lock).values(name=name, **values))
        return None
    if holder["owner"] != owner and holder["heartbeat_at"] > stale_before:
        return holder
    result = conn.execute(
        update(daemon_lock)
        .where(daemon_lock.c.name == name, daemon_lock.c.owner == holder["owner"])
        .values(**values)
    )
    return None if result.rowcount else lock_holder(conn, name)


def heartbeat(conn: Connection, owner: str, at: datetime, name: str = "daemon") -> bool:
    """Renew our lock; False when another daemon took it over (we were presumed dead)."""
    result = conn.execute(
        update(daemon_lock)
        .where(daemon_lock.c.name == name, daemon_lock.c.owner == owner)
        .values(heartbeat_at=at)
    )
    return bool(result.rowcount)


def release_lock(conn: Connection, owner: str, name: str = "daemon") -> None:
    conn.execute(
        daemon_lock.delete().where(daemon_lock.c.name == name, daemon_lock.c.owner == owner)
    )


def get_send(conn: Connection, send_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(sends).where(sends.c.id == send_id)).mappings().first()
    return dict(row) if row else None


def embargo_of(conn: Connection, post_id: int, channel: Channel) -> datetime | None:
    """The embargo of a post's send on a channel (None without a send or an embargo)."""
    value = conn.execute(
        select(sends.c.embargo_until).where(
            sends.c.post_id == post_id, sends.c.channel == channel.value
        )
    ).scalar_one_or_none()
    return as_utc(value)


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


def mark_accepted(conn: Connection, accepted: list[tuple[int, str, str]]) -> int:
    """Rows still 'sending' whose message the server accepted (journal.Journal: delivery id,
    Message-ID, server's answer) become sent; returns how many. Rows already recorded keep
    their state."""
    if not accepted:
        return 0
    stamp = now()
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
                    updated_at=now(),
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
    return _recipient_from_row(row) if row else None


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
    query = update(replies).where(replies.c.read_at.is_(None)).values(read_at=now())
    if reply_ids is not None:
        query = query.where(replies.c.id.in_(reply_ids))
    return conn.execute(query).rowcount


def existing_reply_ids(conn: Connection, reply_ids: list[int]) -> set[int]:
    return set(conn.execute(select(replies.c.id).where(replies.c.id.in_(reply_ids))).scalars())


# --- posts (syndicate posts list) -------------------------------------------------------------


def list_posts_with_sends(conn: Connection, limit: int | None = None) -> list[dict[str, Any]]:
    """Posts, newest first, each with its sends per channel (state and delivery counts)."""
    query = select(
        posts.c.id,
        posts.c.guid,
        posts.c.title,
        posts.c.link,
        posts.c.published,
        posts.c.first_seen,
        posts.c.eligible,
    ).order_by(func.coalesce(posts.c.published, posts.c.first_seen).desc(), posts.c.id.desc())
    if limit:
        query = query.limit(limit)
    found = [
        dict(row) | {"sends": {}, "digest_send": None} for row in conn.execute(query).mappings()
    ]
    by_id = {p["id"]: p for p in found}
    if not by_id:
        return found
    counts = (
        select(
            deliveries.c.send_id,
            func.count().label("total"),
            func.sum((deliveries.c.state == DeliveryState.SENT.value).cast(Integer)).label("sent"),
        )
        .group_by(deliveries.c.send_id)
        .subquery()
    )
    rows = conn.execute(
        select(
            sends.c.id,
            sends.c.post_id,
            sends.c.channel,
            sends.c.state,
            sends.c.scheduled_at,
            func.coalesce(counts.c.total, 0).label("total"),
            func.coalesce(counts.c.sent, 0).label("sent"),
        )
        .outerjoin(counts, counts.c.send_id == sends.c.id)
        .where(sends.c.post_id.in_(list(by_id)))
        .order_by(sends.c.id)
    ).mappings()
    for row in rows:
        by_id[row["post_id"]]["sends"][row["channel"]] = dict(row)
    digested = conn.execute(
        select(digest_posts.c.post_id, digest_posts.c.send_id).where(
            digest_posts.c.post_id.in_(list(by_id))
        )
    )
    for post_id, send_id in digested:
        by_id[post_id]["digest_send"] = send_id
    return found


def dumps(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


# --- inbound replies (syndicate/inbound) ------------------------------------------------------


def reply_seen(conn: Connection, keys: list[str]) -> int | None:
    """The reply already recorded under any of these keys (Message-ID, digest), if any."""
    keys = [k for k in keys if k]
    if not keys:
        return None
    return conn.execute(
        select(inbound_seen.c.reply_id).where(inbound_seen.c.key.in_(keys)).limit(1)
    ).scalar_one_or_none()


def insert_reply(conn: Connection, values: dict[str, Any], seen_keys: list[str]) -> int:
    """Record one inbound message and the keys that recognise it if it comes again."""
    reply_id = _new_id(conn.execute(insert(replies).values(received_at=now(), **values)))
    for key in dict.fromkeys(k for k in seen_keys if k):
        conn.execute(insert(inbound_seen).values(key=key, reply_id=reply_id, seen_at=now()))
    return reply_id


def update_reply(conn: Connection, reply_id: int, **values: Any) -> None:
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


def delivery_address(conn: Connection, send_id: int, recipient_id: int) -> str | None:
    """The address one delivery went to, if that delivery exists."""
    return conn.execute(
        select(recipients.c.email)
        .select_from(deliveries.join(recipients, recipients.c.id == deliveries.c.recipient_id))
        .where(deliveries.c.send_id == send_id, deliveries.c.recipient_id == recipient_id)
    ).scalar_one_or_none()


def recipient_ids_by_email(conn: Connection, email: str) -> list[tuple[int, str]]:
    """(id, status) of every recipient row (reader, editor) with this address."""
    rows = conn.execute(
        select(recipients.c.id, recipients.c.status).where(
            recipients.c.email_key == email.strip().lower()
        )
    )
    return [(row.id, row.status) for row in rows]


def score_bounce(
    conn: Connection,
    email: str,
    *,
    temporary: bool,
    reply_id: int | None,
    points: float,
    stale_after_days: int,
    at: datetime,
) -> float:
    """Add a bounce to an address's score (at most once per day) and return the new score.

    As in Mailman: a score untouched for `stale_after_days` starts again from zero, so a
    mailbox that was full once a month ago does not count against the reader today.
    """
    key = email.strip().lower()
    row = conn.execute(select(bounce_scores).where(bounce_scores.c.email_key == key)).first()
    today = at.date()
    if row is None:
        score, counted = points, True
        conn.execute(
            insert(bounce_scores).values(
                email_key=key, score=score, last_scored_on=today, last_bounce_at=at
            )
        )
    else:
        last = row.last_scored_on
        stale = last is None or (today - last).days >= stale_after_days
        counted = last != today
        score = (0.0 if stale else row.score) + (points if counted else 0.0)
        values: dict[str, Any] = {"score": score, "last_bounce_at": at}
        if counted:
            values["last_scored_on"] = today
        conn.execute(update(bounce_scores).where(bounce_scores.c.email_key == key).values(**values))
    conn.execute(
        insert(bounce_events).values(
            email_key=key,
            reply_id=reply_id,
            temporary=temporary,
            counted=counted,
            score_after=score,
            at=at,
        )
    )
    return score


def mark_bounce_suppressed(conn: Connection, email: str) -> None:
    conn.execute(
        update(bounce_scores)
        .where(bounce_scores.c.email_key == email.strip().lower())
        .values(suppressed_at=func.coalesce(bounce_scores.c.suppressed_at, now()))
    )


def get_bounce_score(conn: Connection, email: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            select(bounce_scores).where(bounce_scores.c.email_key == email.strip().lower())
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def get_imap_state(conn: Connection, mailbox: str) -> tuple[int, int] | None:
    row = conn.execute(select(imap_state).where(imap_state.c.mailbox == mailbox)).first()
    return (row.uidvalidity, row.last_uid) if row else None


def save_imap_state(conn: Connection, mailbox: str, uidvalidity: int, last_uid: int) -> None:
    values = {"uidvalidity": uidvalidity, "last_uid": last_uid, "updated_at": now()}
    if get_imap_state(conn, mailbox) is None:
        conn.execute(insert(imap_state).values(mailbox=mailbox, **values))
    else:
        conn.execute(update(imap_state).where(imap_state.c.mailbox == mailbox).values(**values))
