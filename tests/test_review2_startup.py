"""Review: a database at a revision this syndicate does not know (a newer syndicate migrated it)
is refused by every command; `db current` must not tell the author an upgrade would fix it."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from syndicate import db
from tests.support.cli import invoke


def test_db_current_on_a_newer_database_does_not_promise_db_upgrade_brings_it_there(
    project: Path,
) -> None:
    url = os.environ.get("SYNDICATE_DATABASE_URL") or f"sqlite:///{project / 'syndicate.db'}"
    engine = db.connect(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()

    upgrade = invoke(project, "db", "upgrade")
    assert upgrade.returncode == 1 and b"upgrade syndicate" in upgrade.stderr  # as it should

    current = invoke(project, "db", "current")
    said = (current.stdout + current.stderr).decode()
    # Today: "revision 0099; the newest is 0005: 'syndicate db upgrade' (or any command) brings
    # it there", while `db upgrade` and every other command refuse this database.
    assert "brings it there" not in said, said
    assert "newer syndicate" in said, said
