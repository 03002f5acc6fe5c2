"""Alembic's entry point: migrations run on the connection `syndicate.db.migrate` hands over
(already holding the migration lock), never on one opened from alembic.ini."""

from __future__ import annotations

from alembic import context

from syndicate.db.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite's ALTER TABLE cannot change a column: batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
