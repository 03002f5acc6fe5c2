"""The author's lists (subscribers/*.csv) merged into the database, which keeps each status."""

from __future__ import annotations

import codecs
from pathlib import Path

from syndicate import db
from syndicate.audience import subscribers
from syndicate.models import RecipientKind, RecipientStatus
from tests.support.cli import run_cli


def engine_in(folder: Path):
    return db.connect(f"sqlite:///{folder / 'db.sqlite'}")


def statuses(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {r.email_key: r.status for r in db.recipients.list_recipients(conn)}


def test_shipped_lists_sync_with_their_documented_columns(project: Path) -> None:
    engine = engine_in(project)
    readers = subscribers.sync(engine, project / "subscribers/readers.csv", RecipientKind.READER)
    editors = subscribers.sync(engine, project / "subscribers/editors.csv", RecipientKind.EDITOR)
    assert (readers.added, readers.problems) == (4, [])
    assert (editors.added, editors.problems) == (2, [])
    with engine.connect() as conn:
        herald = db.recipients.recipients_by_email(conn, "opinion@dailyherald.example.com")[0]
    assert herald.fields == {
        "publication": "The Daily Herald",
        "timezone": "America/Toronto",
        "word_limit": "800",
        "formats": "txt docx",
        "quotes": "curly",
        "links": "no",
    }
    # Unchanged since the last sync: not read at all (tests/test_list_sync.py); forced, it is
    # read, and nobody is added twice.
    again = subscribers.sync(engine, project / "subscribers/readers.csv", RecipientKind.READER)
    assert again.unchanged_file and (again.added, again.unchanged) == (0, 0)
    forced = subscribers.sync(
        engine, project / "subscribers/readers.csv", RecipientKind.READER, force=True
    )
    assert (forced.added, forced.unchanged) == (0, 4)


def test_bad_rows_are_reported_by_line_and_good_rows_still_land(tmp_path: Path) -> None:
    path = tmp_path / "readers.csv"
    path.write_text(
        "email,name\n"
        "good@example.com,Good\n"
        ",No Address\n"
        "bad@,Bad\n"
        "GOOD@example.com,Twice\n"
        "also.good@example.com,Also\n",
        encoding="utf-8",
    )
    engine = engine_in(tmp_path)
    report = subscribers.sync(engine, path, RecipientKind.READER)
    assert report.added == 2
    assert [(p.line, p.message.split(";")[0]) for p in report.problems] == [
        (3, "no email address"),
        (4, "'bad@' is not a valid email address (There must be something after the @-sign.)"),
    ]
    assert [p.line for p in report.skipped] == [5]
    assert str(report.problems[0]).startswith(f"{path}:3: ")


def test_unsubscribed_and_bounced_stay_so_while_still_in_the_csv(tmp_path: Path) -> None:
    path = tmp_path / "readers.csv"
    path.write_text("email,name\na@example.com,A\nb@example.com,B\nc@example.com,C\n")
    engine = engine_in(tmp_path)
    subscribers.sync(engine, path, RecipientKind.READER)
    with engine.begin() as conn:
        ids = {r.email_key: r.id for r in db.recipients.list_recipients(conn)}
        assert db.recipients.mark_recipient(
            conn, ids["a@example.com"], RecipientStatus.UNSUBSCRIBED, "link"
        )
        assert db.recipients.mark_recipient(
            conn, ids["b@example.com"], RecipientStatus.BOUNCED, "550"
        )
        assert not db.recipients.mark_recipient(
            conn, ids["b@example.com"], RecipientStatus.UNSUBSCRIBED, "later"
        )
    path.write_text("email,name\nA@example.com,A Renamed\nb@example.com,B\nc@example.com,C\n")
    report = subscribers.sync(engine, path, RecipientKind.READER)
    assert report.kept_suppressed == 2 and report.unchanged == 1
    assert statuses(engine) == {
        "a@example.com": "unsubscribed",
        "b@example.com": "bounced",
        "c@example.com": "active",
    }
    with engine.connect() as conn:
        b = db.recipients.recipient_row(conn, ids["b@example.com"])
    assert b.unsubscribe_reason == "550", "the first reason is kept"


def test_lists_saved_by_excel_latin1_bom_or_semicolons_still_sync(tmp_path: Path) -> None:
    engine = engine_in(tmp_path)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("email;name\nzoe@example.org;Zoë Pérez\n".encode("latin-1"))
    bom = tmp_path / "bom.csv"
    bom.write_bytes(codecs.BOM_UTF8 + "email,name\nbom@example.org,Bõm\n".encode())
    excel_unicode = tmp_path / "unicode.txt"  # Excel's "Unicode Text": UTF-16 with tabs
    excel_unicode.write_bytes("email\tname\nu16@example.org\tÜnï Cödé\n".encode("utf-16"))
    for path in (latin, bom, excel_unicode):
        report = subscribers.sync(engine, path, RecipientKind.READER)
        assert report.added == 1 and report.problems == []
    with engine.connect() as conn:
        names = {r.email: r.name for r in db.recipients.list_recipients(conn)}
    assert names == {
        "zoe@example.org": "Zoë Pérez",
        "bom@example.org": "Bõm",
        "u16@example.org": "Ünï Cödé",
    }


def test_a_list_without_email_column_or_missing_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    engine = engine_in(tmp_path)
    path = tmp_path / "readers.csv"
    path.write_text("mail address,name\nx@example.com,X\n")
    report = subscribers.sync(engine, path, RecipientKind.READER)
    assert report.added == 0 and "no email column" in report.problems[0].message
    missing = subscribers.sync(engine, tmp_path / "nope.csv", RecipientKind.READER)
    assert "not found" in missing.problems[0].message


def test_cli_sync_dry_run_then_list(project: Path) -> None:
    dry = run_cli(project, "subscribers", "sync", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "4 new subscriber(s) would be added" in dry.stdout
    assert "2 new subscriber(s) would be added" in dry.stdout
    with engine_in(project).connect() as conn:
        assert db.recipients.list_recipients(conn) == []
    assert run_cli(project, "subscribers", "sync").returncode == 0
    listed = run_cli(project, "subscribers", "list", "--kind", "editor")
    assert listed.returncode == 0
    assert "opinion@dailyherald.example.com" in listed.stdout
    assert "margaret.holloway" not in listed.stdout


def test_expired_unconfirmed_requests_are_forgotten(tmp_path: Path) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from syndicate.audience import optin

    engine = engine_in(tmp_path)
    old, _ = optin.request(engine, RecipientKind.READER, "old@example.com", "", lifetime_hours=1)
    with engine.begin() as conn:
        conn.execute(
            update(db.schema.pending_confirmations)
            .where(db.schema.pending_confirmations.c.id == old)
            .values(requested_at=db.now() - timedelta(hours=3))
        )
    fresh, _ = optin.request(engine, RecipientKind.READER, "new@example.com", "", lifetime_hours=1)
    with engine.connect() as conn:
        assert db.recipients.get_pending_confirmation(conn, old) is None
        assert db.recipients.get_pending_confirmation(conn, fresh).email == "new@example.com"
