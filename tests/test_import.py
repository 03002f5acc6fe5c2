"""Imports from other newsletter tools: column names, encodings, delimiters, bad rows, status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syndicate import db
from syndicate.audience import importers, subscribers
from syndicate.models import RecipientKind
from tests.support.cli import run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "imports"


def parse(name: str) -> importers.ParsedList:
    return importers.parse(FIXTURES / name)


def summary(parsed: importers.ParsedList) -> dict[str, str]:
    return {row.email: row.status for row in parsed.rows}


def test_mailchimp_subscribed_export() -> None:
    parsed = parse("mailchimp_subscribed.csv")
    assert parsed.tool == "mailchimp"
    assert [(r.email, r.name, r.status) for r in parsed.rows] == [
        ("ann.lee@example.com", "Ann Lee", "active"),
        ("Bob.Marsh@example.org", "Bob Marsh", "active"),
    ]
    [bad] = parsed.problems
    assert bad.line == 4 and "carla@@example.net" in bad.message and "not a valid" in bad.message
    [duplicate] = parsed.skipped
    assert duplicate.line == 5 and "already on line 3" in duplicate.message


def test_mailchimp_unsubscribed_and_cleaned_files_keep_their_status() -> None:
    unsub = parse("mailchimp_unsubscribed.csv")
    assert summary(unsub) == {"dan.old@example.com": "unsubscribed"}
    assert "NORMAL" in unsub.rows[0].reason
    assert summary(parse("mailchimp_cleaned.csv")) == {"gone@example.com": "bounced"}


def test_substack_export() -> None:
    parsed = parse("substack.csv")
    assert parsed.tool == "substack"
    assert summary(parsed) == {
        "reader.one@example.com": "active",
        "paid.reader@example.com": "active",
        "left@example.com": "unsubscribed",
    }
    assert [(p.line, "must have an @-sign" in p.message) for p in parsed.problems] == [(5, True)]


def test_ghost_export_with_bom_and_unicode() -> None:
    parsed = parse("ghost_members.csv")
    assert (parsed.tool, parsed.encoding) == ("ghost", "utf-8-sig")
    # An international domain is kept in the ASCII form every mail server accepts.
    assert summary(parsed) == {
        "emile@xn--exmple-cua.com": "active",
        "quiet@example.com": "unsubscribed",
    }
    assert parsed.rows[0].name == "Émile Zola"
    assert [p.line for p in parsed.problems] == [4, 5, 6]
    assert "no email address" in parsed.problems[0].message
    assert "display name" in parsed.problems[1].message
    # An accented local part needs SMTPUTF8, which many servers refuse: reported, not imported.
    assert "josé@example.com" in parsed.problems[2].message
    assert "Internationalized characters" in parsed.problems[2].message


def test_buttondown_export_skips_never_confirmed_signups() -> None:
    parsed = parse("buttondown.csv")
    assert parsed.tool == "buttondown"
    assert summary(parsed) == {
        "button.one@example.com": "active",
        "button.gone@example.com": "unsubscribed",
        "premium@example.com": "active",
    }
    [skipped] = parsed.skipped
    assert skipped.line == 4 and "never confirmed" in skipped.message


def test_jetpack_export_latin1_semicolons() -> None:
    parsed = parse("jetpack_subscribers.csv")
    assert (parsed.tool, parsed.delimiter) == ("jetpack", ";")
    assert parsed.encoding in ("cp1252", "latin-1")
    assert [(r.email, r.name, r.status) for r in parsed.rows] == [
        ("wp.reader@example.com", "François Côté", "active"),
        ("wp.left@example.com", "Hélène Dubois", "unsubscribed"),
    ]
    [bad] = parsed.problems
    assert bad.line == 4 and "SPACE" in bad.message


def test_plain_csvs_latin1_and_semicolon_with_quoted_delimiter() -> None:
    latin = parse("plain_latin1.csv")
    assert [r.name for r in latin.rows] == ["René Müller", "Søren Ærø"]
    semi = parse("plain_semicolon.csv")
    assert semi.delimiter == ";"
    assert [(r.email, r.name) for r in semi.rows] == [
        ("semi.one@example.com", "Semi One"),
        ("semi.two@example.com", "Two; Semi"),
    ]


def test_quoted_newlines_keep_line_numbers_right(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('email,name\na@example.com,"two\nlines"\nbroken,x\n', encoding="utf-8")
    parsed = importers.parse(path)
    assert [r.email for r in parsed.rows] == ["a@example.com"]
    assert [p.line for p in parsed.problems] == [4]


def test_a_file_without_an_email_column_is_refused_clearly() -> None:
    with pytest.raises(importers.ImportFormatError, match=r"no email column.*name, phone"):
        parse("no_email_column.csv")


def test_import_merges_and_never_reactivates(tmp_path: Path) -> None:
    engine = db.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    first = subscribers.import_file(
        engine, FIXTURES / "mailchimp_unsubscribed.csv", RecipientKind.READER
    )
    assert (first.added, first.added_suppressed) == (0, 1)
    # The same person appears active in another export: still unsubscribed.
    other = tmp_path / "other.csv"
    other.write_text("email,name\nDAN.OLD@example.com,Dan Old\nnew@example.com,New\n")
    second = subscribers.import_file(engine, other, RecipientKind.READER)
    assert (second.added, second.kept_suppressed) == (1, 1)
    with engine.connect() as conn:
        rows = {r.email_key: r for r in db.recipients.list_recipients(conn)}
    assert rows["dan.old@example.com"].status == "unsubscribed"
    assert rows["dan.old@example.com"].source == "import:mailchimp"
    assert rows["new@example.com"].status == "active"
    # A source that says someone left unsubscribes them here too.
    left = tmp_path / "left.csv"
    left.write_text("email,status\nnew@example.com,unsubscribed\n")
    third = subscribers.import_file(engine, left, RecipientKind.READER)
    assert third.newly_suppressed == 1
    with engine.connect() as conn:
        [row] = db.recipients.recipients_by_email(conn, "new@example.com")
    assert row.status == "unsubscribed" and row.unsubscribed_at is not None


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    engine = db.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    report = subscribers.import_file(
        engine, FIXTURES / "substack.csv", RecipientKind.READER, dry_run=True
    )
    assert report.added == 2 and report.added_suppressed == 1 and report.dry_run
    with engine.connect() as conn:
        assert db.recipients.list_recipients(conn) == []


def test_editor_import_keeps_editor_fields(tmp_path: Path) -> None:
    engine = db.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    path = tmp_path / "editors.csv"
    path.write_text("Email;Name;Publication;Word_Limit\ned@paper.example;Ed Itor;The Paper;700\n")
    subscribers.import_file(engine, path, RecipientKind.EDITOR)
    with engine.connect() as conn:
        [row] = db.recipients.list_recipients(conn, RecipientKind.EDITOR)
    assert row.fields == {"publication": "The Paper", "word_limit": "700"}


def test_cli_import_dry_run_then_import_list_and_export(project: Path) -> None:
    fixture = str(FIXTURES / "mailchimp_subscribed.csv")
    dry = run_cli(project, "subscribers", "import", fixture, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "2 new subscriber(s) would be added" in dry.stdout
    assert "line 4:" in dry.stdout and "carla@@example.net" in dry.stdout
    assert "dry run: nothing was written" in dry.stdout
    with db.connect(f"sqlite:///{project / 'syndicate.db'}").connect() as conn:
        assert db.recipients.list_recipients(conn) == []

    done = run_cli(project, "subscribers", "import", fixture, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["added"] == 2 and report["problems"][0]["line"] == 4
    assert run_cli(project, "subscribers", "sync").returncode == 0
    listed = json.loads(run_cli(project, "subscribers", "list", "--json").stdout)
    emails = {r["email"] for r in listed}
    assert {"ann.lee@example.com", "margaret.holloway@example.com"} <= emails
    assert {r["source"] for r in listed} == {"import:mailchimp", "list"}

    exported = run_cli(project, "subscribers", "export", "--kind", "reader")
    assert exported.returncode == 0
    lines = exported.stdout.splitlines()
    assert lines[0].startswith("email,name,kind,status,source")
    assert len(lines) == 1 + 6


def test_cli_import_of_an_unreadable_file_says_why(project: Path) -> None:
    result = run_cli(project, "subscribers", "import", str(FIXTURES / "no_email_column.csv"))
    assert result.returncode == 1
    assert "no email column" in result.stderr
    missing = run_cli(project, "subscribers", "import", "nope.csv")
    assert missing.returncode == 1 and "no such file" in missing.stderr


def test_export_reads_back_with_every_status(tmp_path: Path) -> None:
    source = db.connect(f"sqlite:///{tmp_path / 'source.sqlite'}")
    for name in ("mailchimp_subscribed.csv", "mailchimp_unsubscribed.csv", "mailchimp_cleaned.csv"):
        subscribers.import_file(source, FIXTURES / name, RecipientKind.READER)
    exported = tmp_path / "export.csv"
    exported.write_text(subscribers.export_csv(source), encoding="utf-8")
    target = db.connect(f"sqlite:///{tmp_path / 'target.sqlite'}")
    report = subscribers.import_file(target, exported, RecipientKind.READER)
    assert report.problems == []
    with source.connect() as a, target.connect() as b:
        before = {(r.email, r.name, r.status) for r in db.recipients.list_recipients(a)}
        after = {(r.email, r.name, r.status) for r in db.recipients.list_recipients(b)}
    assert before == after
    assert {status for _, _, status in after} == {"active", "unsubscribed", "bounced"}


TRICKY_ADDRESSES = [
    "a@example.com",
    "A.B@Example.COM",
    "x..y@example.com",
    ".x@example.com",
    "x.@example.com",
    "Postmaster@example.com",
    "o'neil+tag@example.com",
    "{}|~@example.com",
    "a/b=c?d^e`f@example.com",
    "a b@example.com",
    '"quoted"@example.com',
    "ü@example.com",
    "a@exämple.com",
    "a@EXÄMPLE.com",
    "a" * 70 + "@example.com",
    "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + ".com",
    "x@@example.com",
    "x@example..com",
    "x@-example.com",
    "sam <s@example.com>",
    "x@[192.0.2.1]",
    "x@localhost",
    "x@example",
]


def test_the_fast_address_check_agrees_with_email_validator() -> None:
    checker = importers.AddressChecker()
    for warm in ("w@example.com", "w@exämple.com", "w@EXÄMPLE.com"):
        checker.check(warm)
    for address in TRICKY_ADDRESSES:
        fast, fast_why = checker.check(address)
        full, full_why = importers.check_address(address)
        assert (fast, fast_why) == (full, full_why), address


def test_an_unknown_status_word_is_reported_never_guessed_active(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        "email,status\nok@example.com,subscribed\ntypo@example.com,unsubscrbed\n"
        "gone@example.com,Unsubscribed\n",
        encoding="utf-8",
    )
    parsed = importers.parse(path)
    assert summary(parsed) == {"ok@example.com": "active", "gone@example.com": "unsubscribed"}
    [problem] = parsed.problems
    assert problem.line == 3 and "'unsubscrbed' is not a status" in problem.message
