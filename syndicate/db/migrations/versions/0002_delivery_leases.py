"""Deliveries being sent name the worker that claimed them and when the claim lapses.

Several workers (`syndicate send` side by side, on any number of machines) claim batches of one
send; a claim whose worker died is returned to the queue once `claimed_until` has passed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only what is missing: a database whose alembic_version was lost (or made by hand from
    # the baseline's tables) may already have the columns.
    existing = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("deliveries")}
    with op.batch_alter_table("deliveries") as batch:
        if "claimed_by" not in existing:
            batch.add_column(sa.Column("claimed_by", sa.String(64)))
        if "claimed_until" not in existing:
            batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
