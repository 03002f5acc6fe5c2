"""A database made by an older syndicate (hand-written migrations, schema_version 1-3) is
brought to the Alembic baseline in place, keeping its rows, and stamped."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect

from syndicate import db, settings
from syndicate.runtime import Runtime
from syndicate.scheduling import jobs


def test_version_1_database_gains_the_new_columns_and_keeps_its_data(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A SQLite file, on either test run (tests/test_postgres_schema.py upgrades on PostgreSQL).
    monkeypatch.delenv("SYNDICATE_DATABASE_URL", raising=False)
    cfg = settings.load(project / "settings.toml")
    engine = db.connect(cfg.database_url)
    jobs.run_once(Runtime(cfg, engine=engine))
    engine.dispose()
    path = project / "syndicate.db"
    with sqlite3.connect(path) as old:
        # What a version-1 database lacked (columns and a table later issues added), and the
        # Alembic stamp no hand-migrated database has.
        for table, column in (
            ("recipients", "source"),
            ("sends", "policy"),
            ("replies", "references"),
        ):
            old.execute(f'ALTER TABLE {table} DROP COLUMN "{column}"')
        old.execute("DROP TABLE imap_state")
        old.execute("DROP INDEX ix_deliveries_send_state")
        old.execute("DROP TABLE alembic_version")
        old.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        before = old.execute("SELECT count(*) FROM deliveries WHERE state = 'sent'").fetchone()[0]

    engine = db.connect(cfg.database_url)
    inspector = inspect(engine)
    columns = {
        t: {c["name"] for c in inspector.get_columns(t)} for t in ("recipients", "sends", "replies")
    }
    assert "source" in columns["recipients"] and "policy" in columns["sends"]
    assert "references" in columns["replies"]
    assert inspector.has_table("imap_state")
    assert "ix_deliveries_send_state" in {i["name"] for i in inspector.get_indexes("deliveries")}
    with engine.connect() as conn:
        assert db.migrate.current(conn) == db.migrate.HEAD
        # An older syndicate opening it now refuses ("newer than this syndicate (3)").
        assert db.meta.get_meta(conn, "schema_version") == "4"
        sources = {r.source for r in conn.execute(db.schema.recipients.select())}
    assert sources == {"list"}  # the column's default fills existing rows
    with sqlite3.connect(path) as old:
        after = old.execute("SELECT count(*) FROM deliveries WHERE state = 'sent'").fetchone()[0]
    assert after == before == 6
    # Running again changes nothing and sends nothing.
    assert jobs.run_once(Runtime(cfg, engine=engine)).summaries == []
