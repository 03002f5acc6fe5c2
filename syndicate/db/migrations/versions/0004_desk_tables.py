"""The desk's own tables: feed checks, the author's answers, recipients' status changes, and the
account-wide login lock; answers and status changes move out of JSON in `meta`.

Before this revision the desk kept each reply's answers under the `meta` key
`desk_answers:<reply id>` and each recipient's status changes under `desk_status_log:<id>`, as
JSON lists. Each list becomes rows and its key is deleted; a key whose JSON cannot be read, or
whose reply or recipient is gone, stays where it is (nothing is lost). The feed's last check
(`feed_state.checked_at`) becomes its first recorded check, so its health is not "never".

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

NAME = 32
ANSWERS = "desk_answers:"
STATUS_LOG = "desk_status_log:"

frozen = sa.MetaData()
meta = sa.Table(
    "meta",
    frozen,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
replies = sa.Table("replies", frozen, sa.Column("id", sa.Integer, primary_key=True))
feed_state = sa.Table(
    "feed_state",
    frozen,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("checked_at", sa.DateTime(timezone=True)),
)
recipients = sa.Table(
    "recipients",
    frozen,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(NAME)),
)
feed_checks = sa.Table(
    "feed_checks",
    frozen,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("outcome", sa.String(NAME), nullable=False),
    sa.Column("http_status", sa.Integer),
    sa.Column("error", sa.Text, nullable=False, server_default=""),
    sa.Column("new_posts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failing_since", sa.DateTime(timezone=True)),
    sa.Column("failures_in_row", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_feed_checks_source_checked_at", "source", "checked_at"),
)
reply_answers = sa.Table(
    "reply_answers",
    frozen,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("reply_id", sa.Integer, sa.ForeignKey("replies.id"), nullable=False, index=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("to_address", sa.Text, nullable=False),
    sa.Column("message_id", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)
status_changes = sa.Table(
    "recipient_status_changes",
    frozen,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "recipient_id", sa.Integer, sa.ForeignKey("recipients.id"), nullable=False, index=True
    ),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("from_status", sa.String(NAME), nullable=False),
    sa.Column("to_status", sa.String(NAME), nullable=False),
    sa.Column("by", sa.String(NAME), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
)
sa.Table(
    "desk_login_lock",
    frozen,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("wrong", sa.Integer, nullable=False, server_default="0"),
    sa.Column("window_started_at", sa.DateTime(timezone=True)),
    sa.Column("locked_until", sa.DateTime(timezone=True)),
    sa.Column("locks", sa.Integer, nullable=False, server_default="0"),
)
NEW_TABLES = ("feed_checks", "reply_answers", "recipient_status_changes", "desk_login_lock")


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    frozen.create_all(
        bind, tables=[frozen.tables[name] for name in NEW_TABLES if name not in existing]
    )
    _move_answers(bind)
    _move_status_changes(bind)
    if "feed_checks" not in existing:
        _first_checks(bind)


def downgrade() -> None:
    for name in reversed(NEW_TABLES):
        op.drop_table(name)


def _first_checks(bind: sa.Connection) -> None:
    checked = bind.execute(
        sa.select(feed_state.c.source, feed_state.c.checked_at).where(
            feed_state.c.checked_at.is_not(None)
        )
    ).all()
    rows = [
        {"source": source, "checked_at": at, "outcome": "ok", "error": "", "new_posts": 0}
        for source, at in checked
    ]
    if rows:
        bind.execute(sa.insert(feed_checks), rows)


def _when(value: Any) -> datetime:
    at = datetime.fromisoformat(str(value))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _kept(bind: sa.Connection, prefix: str) -> list[tuple[str, int, list[dict[str, Any]]]]:
    """(key, id, entries) of every readable JSON list under `prefix`; the rest is logged."""
    found = []
    rows = bind.execute(
        sa.select(meta.c.key, meta.c.value).where(meta.c.key.startswith(prefix, autoescape=True))
    )
    for key, value in rows:
        try:
            entries = json.loads(value)
            owner = int(key.removeprefix(prefix))
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise ValueError("not a list of objects")
        except ValueError as exc:
            log.warning("meta %s left in place: cannot read it (%s)", key, exc)
            continue
        found.append((key, owner, entries))
    return found


def _exists(bind: sa.Connection, table: sa.Table, row_id: int) -> bool:
    return bind.execute(sa.select(table.c.id).where(table.c.id == row_id)).first() is not None


def _move_answers(bind: sa.Connection) -> None:
    for key, reply_id, entries in _kept(bind, ANSWERS):
        if not _exists(bind, replies, reply_id):
            log.warning("meta %s left in place: reply %s is gone", key, reply_id)
            continue
        try:
            rows = [
                {
                    "reply_id": reply_id,
                    "sent_at": _when(e["at"]),
                    "to_address": str(e.get("to", "")),
                    "message_id": str(e.get("message_id", "")),
                    "body": str(e.get("text", "")),
                }
                for e in entries
            ]
        except (KeyError, ValueError) as exc:
            log.warning("meta %s left in place: an entry cannot be read (%s)", key, exc)
            continue
        if rows:
            bind.execute(sa.insert(reply_answers), rows)
        bind.execute(sa.delete(meta).where(meta.c.key == key))


def _move_status_changes(bind: sa.Connection) -> None:
    for key, recipient_id, entries in _kept(bind, STATUS_LOG):
        if not _exists(bind, recipients, recipient_id):
            log.warning("meta %s left in place: recipient %s is gone", key, recipient_id)
            continue
        try:
            rows = [
                {
                    "recipient_id": recipient_id,
                    "at": _when(e["at"]),
                    "from_status": str(e["from"])[:NAME],
                    "to_status": str(e["to"])[:NAME],
                    # The desk was the only writer: every change in it was the author's.
                    "by": "author",
                    "reason": str(e.get("reason", "")),
                }
                for e in entries
            ]
        except (KeyError, ValueError) as exc:
            log.warning("meta %s left in place: an entry cannot be read (%s)", key, exc)
            continue
        if rows:
            bind.execute(sa.insert(status_changes), rows)
        bind.execute(sa.delete(meta).where(meta.c.key == key))
