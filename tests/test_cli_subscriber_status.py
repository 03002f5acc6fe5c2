"""`syndicate subscribers unsubscribe / resubscribe`: the author's own hand from the command line,
recorded in the person's history as the desk records it; the lists do not undo it; a spam
complaint is not undone; an unknown address is one line and the rest still change."""

from __future__ import annotations

import json
from pathlib import Path

from syndicate import db
from syndicate.models import RecipientKind, RecipientStatus
from tests.support.cli import invoke, ok
from tests.support.postgres import database_url_of

ZOE = "zoe.perez@example.org"
DANIEL = "d.nakamura@example.net"
SAM = "opinion@dailyherald.example.com"


def _people(project: Path) -> dict[tuple[str, str], dict[str, object]]:
    rows = json.loads(ok(project, "subscribers", "list", "--json"))
    return {(row["kind"], row["email"]): row for row in rows}


def _history(project: Path, email: str) -> list[tuple[str, str, str, str]]:
    engine = db.connect(database_url_of(project))
    try:
        with engine.connect() as conn:
            (person,) = [
                r
                for r in db.recipients.recipients_by_email(conn, email)
                if r.kind is RecipientKind.READER
            ]
            changes = db.status_changes.changes_of(conn, person.id)
    finally:
        engine.dispose()
    return [(c.from_status.value, c.to_status.value, c.by.value, c.reason) for c in changes]


def test_unsubscribe_and_resubscribe_are_recorded_and_the_list_does_not_undo_them(
    project: Path,
) -> None:
    ok(project, "subscribers", "sync")

    dry = ok(project, "subscribers", "unsubscribe", "ZOE.Perez@example.org", "--dry-run")
    assert f"{ZOE}: would be unsubscribed (now active)" in dry
    assert "dry run: nothing was written" in dry
    assert _people(project)[("reader", ZOE)]["status"] == "active"

    out = ok(project, "subscribers", "unsubscribe", "ZOE.Perez@example.org", DANIEL)
    assert f"{ZOE}: unsubscribed (was active)" in out
    assert f"{DANIEL}: unsubscribed (was active)" in out
    people = _people(project)
    assert people[("reader", ZOE)]["status"] == "unsubscribed"
    assert people[("reader", ZOE)]["unsubscribe_reason"] == "by the author, from the command line"

    again = ok(project, "subscribers", "unsubscribe", ZOE)
    assert again.strip() == f"{ZOE}: already unsubscribed"

    ok(project, "subscribers", "sync")  # Zoë is still on readers.csv: the file does not re-add
    assert _people(project)[("reader", ZOE)]["status"] == "unsubscribed"

    back = ok(project, "subscribers", "resubscribe", ZOE)
    assert f"{ZOE}: resubscribed (was unsubscribed)" in back
    assert _people(project)[("reader", ZOE)]["status"] == "active"
    assert _history(project, ZOE)[-2:] == [
        ("active", "unsubscribed", "author", "by the author, from the command line"),
        ("unsubscribed", "active", "author", "by the author, from the command line"),
    ]
    assert _people(project)[("reader", DANIEL)]["status"] == "unsubscribed"


def test_an_unknown_address_is_one_line_and_the_others_still_change(project: Path) -> None:
    ok(project, "subscribers", "sync")
    result = invoke(project, "subscribers", "unsubscribe", "nobody@example.com\x1b[31m", ZOE, SAM)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "no reader nobody@example.com" in err and "\x1b" not in err
    assert f"no reader {SAM}" in err  # an editor is not a reader: --kind editor names them
    assert "Traceback" not in err
    assert f"{ZOE}: unsubscribed" in result.stdout.decode()
    assert _people(project)[("reader", ZOE)]["status"] == "unsubscribed"

    editor = ok(project, "subscribers", "unsubscribe", "--kind", "editor", SAM)
    assert f"{SAM}: unsubscribed (was active)" in editor
    assert _people(project)[("editor", SAM)]["status"] == "unsubscribed"


def test_a_spam_complaint_is_not_undone_from_the_command_line(project: Path) -> None:
    ok(project, "subscribers", "sync")
    engine = db.connect(database_url_of(project))
    try:
        with engine.begin() as conn:
            (zoe,) = db.recipients.recipients_by_email(conn, ZOE)
            db.recipients.mark_recipient(conn, zoe.id, RecipientStatus.COMPLAINED, "complaint")
    finally:
        engine.dispose()
    dry = invoke(project, "subscribers", "resubscribe", "--dry-run", ZOE)
    result = invoke(project, "subscribers", "resubscribe", ZOE)
    assert result.returncode == 1
    assert "reported a newsletter as spam" in result.stderr.decode()
    assert _people(project)[("reader", ZOE)]["status"] == "complained"
    # The dry run must say the same thing the run does, not "would be resubscribed".
    assert b"would be resubscribed" not in dry.stdout, dry.stdout.decode()
    assert dry.returncode == result.returncode
