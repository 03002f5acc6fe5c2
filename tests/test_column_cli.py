"""The column as editors receive it from `syndicate run --once`, and `syndicate preview`."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import docx
import pytest
from lxml import etree

from syndicate import db, tokens
from tests.support.cli import run_cli
from tests.support.column import NEWEST_TITLE
from tests.support.postgres import database_url_of

SAM = "opinion@dailyherald.example.com"
FIONA = "comment.desk@eveningpost.example.org"


def editor_messages(project: Path) -> dict[str, EmailMessage]:
    parser = BytesParser(policy=policy.default)
    found = {}
    for path in sorted((project / "outbox").glob("*.eml")):
        message = parser.parsebytes(path.read_bytes())
        if message["Subject"].startswith("Column: "):
            found[message["To"].addresses[0].addr_spec] = message
    return found


@pytest.fixture
def sent(project: Path) -> Path:
    result = run_cli(project, "run", "--once")
    assert result.returncode == 0, result.stderr
    return project


def test_each_editor_gets_a_note_and_the_attachments_they_asked_for(sent: Path) -> None:
    messages = editor_messages(sent)
    assert sorted(messages) == sorted([SAM, FIONA])

    sam, fiona = messages[SAM], messages[FIONA]
    assert [a.get_filename() for a in sam.iter_attachments()] == [
        "job-not-work.txt",
        "job-not-work.docx",
    ]
    assert [a.get_filename() for a in fiona.iter_attachments()] == [
        "job-not-work.txt",
        "job-not-work.html",
    ]
    docx_part = next(a for a in sam.iter_attachments() if a.get_filename().endswith(".docx"))
    document = docx.Document(io.BytesIO(docx_part.get_content()))
    assert ("Headline", NEWEST_TITLE) in [(p.style.name, p.text) for p in document.paragraphs]

    note = sam.get_body(("plain",)).get_content()
    lines = [line for line in note.splitlines() if line.strip()]
    assert lines[0] == "Hi Sam,"
    assert lines[1] == "FOR RELEASE: UPON RECEIPT"
    assert lines[2].startswith("Here is this week's column: “The job")
    html = fiona.get_body(("html",)).get_content()
    assert '<h2 class="subhead"' in html and "##" not in html
    assert "Hi Fiona," in html

    # The Reply-To token names this send and this editor, so an answer is filed as theirs.
    engine = db.connect(database_url_of(sent))
    key = db.meta.hmac_key(engine, None)
    with engine.connect() as conn:
        for address, message in messages.items():
            token = tokens.token_from_address(message["Reply-To"].addresses[0].addr_spec)
            claim = tokens.verify(key, token or "", "reply")
            assert claim is not None
            recipient = db.recipients.get_recipient(conn, claim.recipient_id)
            send = db.sends.get_send(conn, claim.send_id)
            assert recipient is not None and recipient.email == address
            assert send is not None and send.channel == "column"


def test_preview_writes_each_format_for_an_editor(sent: Path) -> None:
    out = sent / "preview"
    for fmt in ("txt", "docx", "html", "nitf"):
        target = out / f"draft.{fmt}"
        result = run_cli(
            sent,
            "preview",
            "latest",
            "--channel",
            "column",
            "--format",
            fmt,
            "--editor",
            FIONA,
            "--out",
            str(target),
        )
        assert result.returncode == 0, result.stderr
        assert f"Wrote {target}" in " ".join(result.stdout.split())
    text = (out / "draft.txt").read_text(encoding="utf-8")
    assert text.startswith("JOB-NOT-WORK/\nFOR RELEASE: UPON RECEIPT\nEds: ")
    assert "OVER YOUR 650-WORD LIMIT" in text  # Fiona's limit
    assert "that's the point" in text  # Fiona's straight quotes
    document = docx.Document(str(out / "draft.docx"))
    assert [p.style.name for p in document.paragraphs][:5] == [
        "Slug",
        "Release",
        "Eds",
        "Headline",
        "Byline",
    ]
    html = (out / "draft.html").read_text(encoding="utf-8")
    assert "<h1" in html and "Hi " not in html  # the draft alone, without the note
    nitf = etree.parse(str(out / "draft.nitf")).getroot()
    assert (
        nitf.findtext("body/body.head/hedline/hl1")
        == "The job is not the work — and that's the point"
    )


def test_preview_prints_text_formats_and_refuses_what_it_cannot_do(sent: Path) -> None:
    printed = run_cli(sent, "preview", "latest", "--channel", "column", "--format", "txt")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith("JOB-NOT-WORK/\n")
    assert "that’s the point" in printed.stdout  # settings' default: curly quotes

    binary = run_cli(sent, "preview", "latest", "--channel", "column", "--format", "docx")
    assert binary.returncode == 1 and "pass --out FILE" in binary.stderr
    unknown = run_cli(sent, "preview", "latest", "--channel", "column", "--format", "pdf")
    assert unknown.returncode == 1
    assert "txt, docx, html, nitf" in unknown.stderr and "Traceback" not in unknown.stderr
    stranger = run_cli(
        sent, "preview", "latest", "--channel", "column", "--editor", "who@example.com"
    )
    assert stranger.returncode == 1 and "no editor 'who@example.com'" in stranger.stderr


def test_preview_shows_the_sends_embargo_in_the_editors_zone(sent: Path) -> None:
    # The scheduling commands set sends.embargo_until; here we set it directly.
    engine = db.connect(database_url_of(sent))
    with engine.begin() as conn:
        conn.execute(
            db.schema.sends.update()
            .where(db.schema.sends.c.channel == "column")
            .values(embargo_until=datetime(2026, 12, 5, 5, 1, tzinfo=UTC))
        )
    engine.dispose()
    for address, expected in (
        (SAM, "EMBARGOED UNTIL: Saturday, Dec. 5, 2026, 00:01 ET"),
        (FIONA, "EMBARGOED UNTIL: Saturday, Dec. 5, 2026, 05:01 GMT"),
    ):
        result = run_cli(sent, "preview", "latest", "--channel", "column", "--editor", address)
        assert result.returncode == 0, result.stderr
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        assert lines[1] == expected, address
        assert lines.count(expected) == 2  # in the note and in the draft
