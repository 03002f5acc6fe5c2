"""Review: `subscribers unsubscribe/resubscribe` against what the README promises."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from syndicate import db
from syndicate.errors import SyndicateError
from syndicate.models import RecipientStatus
from tests.support.cli import ok
from tests.support.postgres import database_url_of

ZOE = "zoe.perez@example.org"
NEW = "new.reader@example.com"


def _status(project: Path, email: str) -> str:
    rows = json.loads(ok(project, "subscribers", "list", "--json"))
    (row,) = [r for r in rows if r["kind"] == "reader" and r["email"] == email]
    return str(row["status"])


def test_a_list_that_says_unsubscribed_does_not_undo_the_authors_resubscribe(
    project: Path,
) -> None:
    readers = project / "subscribers" / "readers.csv"
    readers.write_text(
        "email,name,status\n"
        "margaret.holloway@example.com,Margaret Holloway,active\n"
        f"{ZOE},Zoë Pérez,unsubscribed\n",
        encoding="utf-8",
    )
    ok(project, "subscribers", "sync")
    assert _status(project, ZOE) == "unsubscribed"
    ok(project, "subscribers", "resubscribe", ZOE)
    assert _status(project, ZOE) == "active"
    # The author adds someone else to the list; Zoë's row is as it was.
    with readers.open("a", encoding="utf-8") as out:
        out.write(f"{NEW},New Reader,active\n")
    ok(project, "subscribers", "sync")
    assert _status(project, NEW) == "active"
    # README: "the lists do not undo either".
    assert _status(project, ZOE) == "active"


def test_a_complaint_arriving_during_a_resubscribe_is_not_undone(
    project: Path, monkeypatch
) -> None:
    """set_status_by_author reads the status, then reactivates anyone not active: a spam
    complaint recorded in between (the feedback loop, another process) is turned into "active".
    The interleaving is forced by running the complaint, on its own connection and committed,
    just before the reactivating UPDATE."""
    from syndicate.audience import subscribers

    ok(project, "subscribers", "sync")
    ok(project, "subscribers", "unsubscribe", ZOE)
    engine = db.connect(database_url_of(project))
    other = db.connect(database_url_of(project))
    reactivate = db.desk.reactivate

    def complaint_then_reactivate(conn, recipient_id):  # type: ignore[no-untyped-def]
        with other.begin() as side:
            side.execute(
                db.schema.recipients.update()
                .where(db.schema.recipients.c.id == recipient_id)
                .values(status=RecipientStatus.COMPLAINED.value)
            )
        return reactivate(conn, recipient_id)

    monkeypatch.setattr(db.desk, "reactivate", complaint_then_reactivate)
    try:
        with engine.connect() as conn:
            (zoe,) = db.recipients.recipients_by_email(conn, ZOE)
        with contextlib.suppress(SyndicateError):  # refusing is fine; re-adding is not
            subscribers.set_status_by_author(engine, zoe.id, True, where="on the desk")
    finally:
        engine.dispose()
        other.dispose()
    assert _status(project, ZOE) == "complained"
