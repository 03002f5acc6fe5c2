"""A database made by an older syndicate is upgraded in place, keeping its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect

from syndicate import settings, store
from syndicate.runtime import Runtime
from syndicate.scheduling import daemon


def test_version_1_database_gains_the_new_columns_and_keeps_its_data(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A SQLite file, on either test run (tests/test_postgres_schema.py upgrades on PostgreSQL).
    monkeypatch.delenv("SYNDICATE_DATABASE_URL", raising=False)
    cfg = settings.load(project / "settings.toml")
    engine = store.connect(cfg.database_url)
    daemon.run_once(Runtime(cfg, engine=engine))
    engine.dispose()
    path = project / "syndicate.db"
    with sqlite3.connect(path) as db:
        # What a version-1 database lacked (columns later issues added).
        for table, column in (
            ("recipients", "source"),
            ("sends", "policy"),
            ("replies", "references"),
        ):
            db.execute(f'ALTER TABLE {table} DROP COLUMN "{column}"')
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        before = db.execute("SELECT count(*) FROM deliveries WHERE state = 'sent'").fetchone()[0]

    engine = store.connect(cfg.database_url)
    columns = {
        t: {c["name"] for c in inspect(engine).get_columns(t)}
        for t in ("recipients", "sends", "replies")
    }
    assert "source" in columns["recipients"] and "policy" in columns["sends"]
    assert "references" in columns["replies"]
    with engine.connect() as conn:
        assert store.get_meta(conn, "schema_version") == str(store.SCHEMA_VERSION)
        sources = {r.source for r in conn.execute(store.recipients.select())}
    assert sources == {"list"}  # the column's default fills existing rows
    with sqlite3.connect(path) as db:
        after = db.execute("SELECT count(*) FROM deliveries WHERE state = 'sent'").fetchone()[0]
    assert after == before == 6
    # Running again changes nothing and sends nothing.
    assert daemon.run_once(Runtime(cfg, engine=engine)).summaries == []
