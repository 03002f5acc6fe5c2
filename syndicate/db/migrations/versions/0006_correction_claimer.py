"""Which process is sending a correction (host:pid:nonce, as deliveries name their worker), so a
correction left 'sending' by a process of this machine that died is sent again at the next
tick instead of an hour later.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("corrections")}
    if "claimed_by" not in existing:
        with op.batch_alter_table("corrections") as batch:
            batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("corrections") as batch:
        batch.drop_column("claimed_by")
