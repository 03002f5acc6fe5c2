"""`--json` output keeps every value as stored, but a stranger's C1 controls (8-bit CSI) and
bidirectional overrides arrive as \\u escapes, never raw on the author's terminal."""

from __future__ import annotations

import json
import re
from pathlib import Path

from syndicate import db
from tests.support.cli import ok
from tests.support.postgres import database_url_of

HOSTILE = "Zoë \x9b31m\u202eevil\u2066 \x7f"
RAW = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\x00-\x08\x0b-\x1f\x1b]")


def name_zoe(project: Path, name: str) -> None:
    """The shipped reader zoe.perez@example.org, renamed by a stranger's text."""
    ok(project, "subscribers", "sync")
    engine = db.connect(database_url_of(project))
    try:
        with engine.begin() as conn:
            conn.execute(
                db.schema.recipients.update()
                .where(db.schema.recipients.c.email_key == "zoe.perez@example.org")
                .values(name=name)
            )
    finally:
        engine.dispose()


def test_json_escapes_what_would_drive_the_terminal_and_keeps_the_value(project: Path) -> None:
    name_zoe(project, HOSTILE)
    out = ok(project, "subscribers", "list", "--json")
    assert not RAW.search(out), repr(RAW.search(out))
    assert "\\u009b31m\\u202eevil\\u2066 \\u007f" in out
    assert "Zoë" in out  # other non-ASCII stays as itself
    names = {row["email"]: row["name"] for row in json.loads(out)}
    assert names["zoe.perez@example.org"] == HOSTILE
