"""The tables, as SQLAlchemy Core describes them; valid on SQLite and PostgreSQL alike.

Changing a table here needs a new revision in `migrations/versions/` (see docs/architecture.md).
Enumerated values (states, kinds) are plain strings of at most 32 characters: PostgreSQL
enforces VARCHAR lengths, SQLite does not, so a too-short column only fails in production.
Every column default is also a server default, so a column added by a migration fills
existing rows.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
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
    false,
)

# Room for any enumerated value (`awaiting_approval` is 17 characters).
NAME = 32

# meta's `schema_version`: a syndicate from before Alembic reads it and refuses a database
# newer than it knows (written by revision 0001, and by migrate.create_at_head).
LEGACY_SCHEMA_VERSION = "4"

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
    Column("author", Text, nullable=False, default="", server_default=""),
    Column("published", DateTime(timezone=True)),
    Column("summary_html", Text, nullable=False, default="", server_default=""),
    Column("content_html", Text, nullable=False, default="", server_default=""),
    Column("categories", JSON, nullable=False, default=list, server_default="[]"),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    # Back-catalogue posts found on the first run are recorded but never become sends.
    Column("eligible", Boolean, nullable=False),
)

recipients = Table(
    "recipients",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(NAME), nullable=False),
    Column("email", Text, nullable=False),
    # Lower-cased address: the identity used for de-duplication and lookups.
    Column("email_key", Text, nullable=False),
    Column("name", Text, nullable=False, default="", server_default=""),
    Column("status", String(NAME), nullable=False, default="active", server_default="active"),
    Column("fields", JSON, nullable=False, default=dict, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Where the address came from: "list" (the author's CSV), "import:mailchimp", "web" …
    Column("source", String(NAME), nullable=False, default="list", server_default="list"),
    # Set when the person confirmed a double opt-in from the web form.
    Column("confirmed_at", DateTime(timezone=True)),
    # Set with the status change to unsubscribed/bounced/complained, with what caused it.
    Column("unsubscribed_at", DateTime(timezone=True)),
    Column("unsubscribe_reason", Text, nullable=False, default="", server_default=""),
    UniqueConstraint("kind", "email_key"),
)

# Double opt-in requests from the web form; the signed link names the row by id and nonce.
pending_confirmations = Table(
    "pending_confirmations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(NAME), nullable=False),
    Column("email", Text, nullable=False),
    Column("email_key", Text, nullable=False),
    Column("name", Text, nullable=False, default="", server_default=""),
    Column("nonce", String(NAME), nullable=False),
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
    Column("event", String(NAME), nullable=False),
    Column("email", Text, nullable=False, default="", server_default=""),
    Column("recipient_id", Integer),
    Column("outcome", Text, nullable=False, default="", server_default=""),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

sends = Table(
    "sends",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("post_id", Integer, ForeignKey("posts.id"), nullable=False),
    Column("channel", String(NAME), nullable=False),
    Column("state", String(NAME), nullable=False),
    Column("scheduled_at", DateTime(timezone=True), nullable=False),
    Column("embargo_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    # The channel policy that scheduled it ("immediately", "cron: …", "digest: …", "manual",
    # or "by hand" for `syndicate schedule`).
    Column("policy", Text, nullable=False, default="", server_default=""),
    # Manual approval: when the preview went to the author, when and how it was approved.
    Column("approval_requested_at", DateTime(timezone=True)),
    Column("approved_at", DateTime(timezone=True)),
    Column("approved_by", Text, nullable=False, default="", server_default=""),
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
    Column("name", String(NAME), primary_key=True),
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
    Column("state", String(NAME), nullable=False),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("message_id", Text),
    Column("detail", Text, nullable=False, default="", server_default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # When a deferred delivery may be tried again (exponential back-off); NULL otherwise.
    Column("next_attempt_at", DateTime(timezone=True)),
    # While 'sending': the worker that claimed the row and when its claim lapses (by the
    # database's clock); after that anyone may put the row back in the queue.
    Column("claimed_by", String(64)),
    Column("claimed_until", DateTime(timezone=True)),
    UniqueConstraint("send_id", "recipient_id"),
    Index("ix_deliveries_send_state", "send_id", "state", "id"),
)

replies = Table(
    "replies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("kind", String(NAME), nullable=False),
    Column("message_id", Text),
    Column("send_id", Integer, ForeignKey("sends.id")),
    Column("recipient_id", Integer, ForeignKey("recipients.id")),
    Column("post_id", Integer, ForeignKey("posts.id")),
    Column("sender", Text, nullable=False, default="", server_default=""),
    Column("subject", Text, nullable=False, default="", server_default=""),
    Column("text", Text, nullable=False, default="", server_default=""),
    Column("raw", LargeBinary, nullable=False),
    # Inbound replies (syndicate/inbound): where the message stands and why.
    Column("state", String(NAME), nullable=False, default="filed", server_default="filed"),
    Column("source", String(NAME), nullable=False, default="", server_default=""),
    Column("sender_name", Text, nullable=False, default="", server_default=""),
    Column("in_reply_to", Text, nullable=False, default="", server_default=""),
    Column("references", Text, nullable=False, default="", server_default=""),
    # Failed addresses of a bounce; `temporary` is true when every failure was temporary.
    Column("addresses", JSON, nullable=False, default=list, server_default="[]"),
    Column("temporary", Boolean, nullable=False, default=False, server_default=false()),
    Column("reason", Text, nullable=False, default="", server_default=""),
    Column("size", Integer, nullable=False, default=0, server_default="0"),
    Column("forwarded_at", DateTime(timezone=True)),
    Column("detail", Text, nullable=False, default="", server_default=""),
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
    Column("score", Float, nullable=False, default=0.0, server_default="0"),
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
    # UIDVALIDITY and UIDs are unsigned 32-bit: past PostgreSQL's signed INTEGER.
    Column("uidvalidity", BigInteger, nullable=False),
    Column("last_uid", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Corrections and kills of a column already sent to editors (syndicate/corrections/), and
# who got each notice.
corrections = Table(
    "corrections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("post_id", Integer, ForeignKey("posts.id"), nullable=False),
    Column("send_id", Integer, ForeignKey("sends.id"), nullable=False),  # the original column
    Column("action", String(NAME), nullable=False),
    Column("state", String(NAME), nullable=False),
    Column("origin", Text, nullable=False, default="", server_default=""),  # what proposed it
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("base_title", Text, nullable=False, default="", server_default=""),
    Column("base_content_html", Text, nullable=False, default="", server_default=""),
    Column("base_summary_html", Text, nullable=False, default="", server_default=""),
    Column("new_title", Text, nullable=False, default="", server_default=""),
    Column("new_content_html", Text, nullable=False, default="", server_default=""),
    Column("new_summary_html", Text, nullable=False, default="", server_default=""),
    Column("summary", Text, nullable=False, default="", server_default=""),
    Column("details", JSON, nullable=False, default=list, server_default="[]"),
    Column("note", Text, nullable=False, default="", server_default=""),
    Column("reason", Text, nullable=False, default="", server_default=""),
    Column("asked_at", DateTime(timezone=True)),
    Column("approved_at", DateTime(timezone=True)),
    Column("approved_by", Text, nullable=False, default="", server_default=""),
    Column("sent_at", DateTime(timezone=True)),
    # updated, correction, kill
    Column("advisory", String(NAME), nullable=False, default="", server_default=""),
    Column("version", Integer, nullable=False, default=0, server_default="0"),
    # The process sending it (state 'sending'): host:pid:nonce, as deliveries.claimed_by.
    Column("claimed_by", String(64)),
)

correction_deliveries = Table(
    "correction_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("correction_id", Integer, ForeignKey("corrections.id"), nullable=False),
    Column("recipient_id", Integer, ForeignKey("recipients.id"), nullable=False),
    Column("message_id", Text, nullable=False, default="", server_default=""),
    Column("attempts", Integer, nullable=False, default=1, server_default="1"),
    Column("state", String(NAME), nullable=False),
    Column("detail", Text, nullable=False, default="", server_default=""),
    Column("at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("correction_id", "recipient_id"),
)

# Every poll of the feed, whatever came of it (syndicate/feedwatch/): the desk's and `status`'s
# feed health. A failed check carries the one-line error and when the failing began.
feed_checks = Table(
    "feed_checks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(NAME), nullable=False),  # ok, not_modified, failed
    Column("http_status", Integer),
    Column("error", Text, nullable=False, default="", server_default=""),
    Column("new_posts", Integer, nullable=False, default=0, server_default="0"),
    # For a failed check: the first failure of the run of failures it belongs to.
    Column("failing_since", DateTime(timezone=True)),
    Column("failures_in_row", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_feed_checks_source_checked_at", "source", "checked_at"),
)

# The author's answers to replies, sent from the desk.
reply_answers = Table(
    "reply_answers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("reply_id", Integer, ForeignKey("replies.id"), nullable=False, index=True),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("to_address", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("body", Text, nullable=False),
)

# Every change of a recipient's status, by whom and why: one person's history on the desk.
recipient_status_changes = Table(
    "recipient_status_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("recipient_id", Integer, ForeignKey("recipients.id"), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("from_status", String(NAME), nullable=False),
    Column("to_status", String(NAME), nullable=False),
    Column("by", String(NAME), nullable=False),  # author, reader, bounce, import
    Column("reason", Text, nullable=False, default="", server_default=""),
)

# The desk's account-wide login lock (one row), shared by every `syndicate serve` process.
desk_login_lock = Table(
    "desk_login_lock",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("wrong", Integer, nullable=False, default=0, server_default="0"),
    Column("window_started_at", DateTime(timezone=True)),
    Column("locked_until", DateTime(timezone=True)),
    Column("locks", Integer, nullable=False, default=0, server_default="0"),
)

# A provider's rate limit shared by every worker (db/rates.py): the next free sending slot and
# the hourly window, in seconds since the epoch by the database's clock.
send_rates = Table(
    "send_rates",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("next_slot", Float, nullable=False, default=0.0, server_default="0"),
    Column("window_start", Float, nullable=False, default=0.0, server_default="0"),
    Column("window_count", Integer, nullable=False, default=0, server_default="0"),
)

# What the last sync of each of the author's CSV lists read (db/list_files.py): a list whose
# size, mtime and content hash are unchanged is not read again.
list_files = Table(
    "list_files",
    metadata,
    Column("kind", String(NAME), primary_key=True),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("synced_at", DateTime(timezone=True), nullable=False),
    # Which file it was (git's index keeps the same): another file of the same size and mtime
    # is not taken for it. NULL for lists synced before revision 0005.
    Column("device", BigInteger),
    Column("inode", BigInteger),
    Column("ctime_ns", BigInteger),
)
