"""Rate limits shared by every worker, and the state of the author's CSV lists.

`send_rates`: one row per provider limit (the transport's host, port and user): the next free
sending slot and the hourly window, which every worker reserves from atomically. `list_files`:
the size, mtime and SHA-256 of each list as last synced, so an unchanged list is not read.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only what is missing: a database whose alembic_version was lost already has them.
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "send_rates" not in existing:
        _create_send_rates()
    if "list_files" not in existing:
        _create_list_files()


def _create_send_rates() -> None:
    op.create_table(
        "send_rates",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("next_slot", sa.Float, nullable=False, server_default="0"),
        sa.Column("window_start", sa.Float, nullable=False, server_default="0"),
        sa.Column("window_count", sa.Integer, nullable=False, server_default="0"),
    )


def _create_list_files() -> None:
    op.create_table(
        "list_files",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("list_files")
    op.drop_table("send_rates")
