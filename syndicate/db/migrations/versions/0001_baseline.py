"""Baseline: the schema of schema_version 3, made valid on PostgreSQL.

The hand-written migrations (schema_version 1-3) left this schema; here it is also valid on
PostgreSQL (state columns wide enough, boolean defaults `false`, IMAP UIDs 64-bit).

On an empty database it creates every table. On a database an older syndicate made (a `meta`
row `schema_version`, no `alembic_version`) it creates the tables that are missing, adds the
columns that are missing (their server default fills existing rows) and, on PostgreSQL, widens
columns that are too narrow: after it, such a database is exactly the baseline.

The tables are written out here, not imported from schema.py: a revision is history and must
keep creating what it created when later revisions change schema.py.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# An older syndicate reads this and refuses ("newer than this syndicate") instead of using a
# schema it does not know.
LEGACY_SCHEMA_VERSION = "4"

frozen = sa.MetaData()
sa.Table(
    "meta",
    frozen,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
sa.Table(
    "feed_state",
    frozen,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("initialized_at", sa.DateTime(timezone=True)),
    sa.Column("checked_at", sa.DateTime(timezone=True)),
)
sa.Table(
    "posts",
    frozen,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("guid", sa.Text, nullable=False, unique=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("link", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("published", sa.DateTime(timezone=True)),
    sa.Column("summary_html", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("content_html", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("categories", sa.JSON, nullable=False, default=list, server_default="[]"),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("eligible", sa.Boolean, nullable=False),
)
sa.Table(
    "recipients",
    frozen,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("email_key", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("status", sa.String(32), nullable=False, default="active", server_default="active"),
    sa.Column("fields", sa.JSON, nullable=False, default=dict, server_default="{}"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", sa.String(32), nullable=False, default="list", server_default="list"),
    sa.Column("confirmed_at", sa.DateTime(timezone=True)),
    sa.Column("unsubscribed_at", sa.DateTime(timezone=True)),
    sa.Column("unsubscribe_reason", sa.Text, nullable=False, default="", server_default=""),
    sa.UniqueConstraint("kind", "email_key"),
)
sa.Table(
    "pending_confirmations",
    frozen,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("email_key", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("nonce", sa.String(32), nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("confirmed_at", sa.DateTime(timezone=True)),
    sqlite_autoincrement=True,
)
sa.Table(
    "webhook_events",
    frozen,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("email", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("recipient_id", sa.Integer),
    sa.Column("outcome", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Table(
    "sends",
    frozen,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id"), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("embargo_until", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("policy", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("approval_requested_at", sa.DateTime(timezone=True)),
    sa.Column("approved_at", sa.DateTime(timezone=True)),
    sa.Column("approved_by", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("embargo_broken_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("post_id", "channel"),
)
sa.Table(
    "digest_posts",
    frozen,
    sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id"), primary_key=True),
    sa.Column("send_id", sa.Integer, sa.ForeignKey("sends.id")),
    sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Table(
    "daemon_lock",
    frozen,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Table(
    "deliveries",
    frozen,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("send_id", sa.Integer, sa.ForeignKey("sends.id"), nullable=False),
    sa.Column("recipient_id", sa.Integer, sa.ForeignKey("recipients.id"), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("message_id", sa.Text),
    sa.Column("detail", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("send_id", "recipient_id"),
    sa.Index("ix_deliveries_send_state", "send_id", "state", "id"),
)
sa.Table(
    "replies",
    frozen,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("message_id", sa.Text),
    sa.Column("send_id", sa.Integer, sa.ForeignKey("sends.id")),
    sa.Column("recipient_id", sa.Integer, sa.ForeignKey("recipients.id")),
    sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id")),
    sa.Column("sender", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("subject", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("text", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("state", sa.String(32), nullable=False, default="filed", server_default="filed"),
    sa.Column("source", sa.String(32), nullable=False, default="", server_default=""),
    sa.Column("sender_name", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("in_reply_to", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("references", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("addresses", sa.JSON, nullable=False, default=list, server_default="[]"),
    sa.Column("temporary", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Column("reason", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("size", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("forwarded_at", sa.DateTime(timezone=True)),
    sa.Column("detail", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("verified", sa.Boolean),
    sa.Column("read_at", sa.DateTime(timezone=True)),
)
sa.Table(
    "inbound_seen",
    frozen,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("reply_id", sa.Integer, sa.ForeignKey("replies.id"), nullable=False),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Table(
    "bounce_scores",
    frozen,
    sa.Column("email_key", sa.Text, primary_key=True),
    sa.Column("score", sa.Float, nullable=False, default=0.0, server_default="0"),
    sa.Column("last_scored_on", sa.Date),
    sa.Column("last_bounce_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("suppressed_at", sa.DateTime(timezone=True)),
)
sa.Table(
    "bounce_events",
    frozen,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email_key", sa.Text, nullable=False),
    sa.Column("reply_id", sa.Integer, sa.ForeignKey("replies.id")),
    sa.Column("temporary", sa.Boolean, nullable=False),
    sa.Column("counted", sa.Boolean, nullable=False),
    sa.Column("score_after", sa.Float, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
sa.Table(
    "imap_state",
    frozen,
    sa.Column("mailbox", sa.Text, primary_key=True),
    sa.Column("uidvalidity", sa.BigInteger, nullable=False),
    sa.Column("last_uid", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Table(
    "corrections",
    frozen,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id"), nullable=False),
    sa.Column("send_id", sa.Integer, sa.ForeignKey("sends.id"), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("origin", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("base_title", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("base_content_html", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("base_summary_html", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("new_title", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("new_content_html", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("new_summary_html", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("summary", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("details", sa.JSON, nullable=False, default=list, server_default="[]"),
    sa.Column("note", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("reason", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("asked_at", sa.DateTime(timezone=True)),
    sa.Column("approved_at", sa.DateTime(timezone=True)),
    sa.Column("approved_by", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("advisory", sa.String(32), nullable=False, default="", server_default=""),
    sa.Column("version", sa.Integer, nullable=False, default=0, server_default="0"),
)

sa.Table(
    "correction_deliveries",
    frozen,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("correction_id", sa.Integer, sa.ForeignKey("corrections.id"), nullable=False),
    sa.Column("recipient_id", sa.Integer, sa.ForeignKey("recipients.id"), nullable=False),
    sa.Column("message_id", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("attempts", sa.Integer, nullable=False, default=1, server_default="1"),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("correction_id", "recipient_id"),
)


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for table in frozen.sorted_tables:
        if not inspector.has_table(table.name):
            table.create(bind)
            continue
        existing = {column["name"]: column for column in inspector.get_columns(table.name)}
        for column in table.columns:
            found = existing.get(column.name)
            if found is None:
                op.add_column(table.name, column._copy())
            elif _too_narrow(found["type"], column.type) and bind.dialect.name != "sqlite":
                op.alter_column(table.name, column.name, type_=column.type)
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(bind)
    meta = frozen.tables["meta"]
    bind.execute(meta.delete().where(meta.c.key == "schema_version"))
    bind.execute(meta.insert().values(key="schema_version", value=LEGACY_SCHEMA_VERSION))


def _too_narrow(found: sa.types.TypeEngine, wanted: sa.types.TypeEngine) -> bool:
    """A VARCHAR shorter than the baseline's (sends.state was VARCHAR(16)), or an INTEGER
    where the baseline holds 64 bits."""
    if isinstance(wanted, sa.String) and isinstance(found, sa.String):
        return found.length is not None and (wanted.length is None or found.length < wanted.length)
    return isinstance(wanted, sa.BigInteger) and not isinstance(found, sa.BigInteger)


def downgrade() -> None:
    for table in reversed(frozen.sorted_tables):
        table.drop(op.get_bind(), checkfirst=True)
