"""Which file each of the author's lists was when last synced: device, inode and ctime beside
size and mtime (as git's index keeps them), so a list swapped for another file of the same size
and mtime (a symlink pointed at a new export, `mv` of a `cp -p` copy) is read again.

Rows synced before this revision have none: their list is hashed once more at the next sync.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = ("device", "inode", "ctime_ns")


def upgrade() -> None:
    existing = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("list_files")}
    with op.batch_alter_table("list_files") as batch:
        for name in COLUMNS:
            if name not in existing:
                batch.add_column(sa.Column(name, sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("list_files") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
