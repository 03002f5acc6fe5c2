"""Finding 4 (issue 11): a large message `From: victim` carrying a valid reply token made us mail
the victim "Not delivered: <the attacker's subject>" from the author's domain. Notices now go
only to the address on record for the token's recipient, and only when that recipient wrote.
Also issue 12: a forwarded reply's subject keeps its spaces in every RFC 2047 decoder."""

from __future__ import annotations

import mailbox
from email import message_from_bytes, policy
from email.header import decode_header
from pathlib import Path

import pytest

from syndicate import tokens
from syndicate.inbound import pipeline
from syndicate.runtime import Runtime
from tests.support.hostile_mail import forged_reply, status_of
from tests.support.inbound import cli, copy_project, edit, fixture, load, sent_fixtures

VICTIM = "victim@elsewhere.example"
MARGARET = "margaret.holloway@example.com"  # reader 1


base = sent_fixtures("trust-notices")[0]


@pytest.fixture
def project(base: Path, tmp_path: Path) -> Path:
    folder = copy_project(base, tmp_path / "project")
    edit(folder / "settings.toml", "max_message_bytes = 10000000", "max_message_bytes = 20000")
    edit(folder / "settings.toml", 'maildir = ""', 'maildir = "Maildir"')
    return folder


def notices(project: Path) -> dict[str, str]:
    """Every notice in the outbox: its To address → its Subject."""
    found = {}
    for path in (project / "outbox").glob("reply*.eml"):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        found[msg["To"].addresses[0].addr_spec] = str(msg["Subject"])
    return found


def large(sender: str, subject: str, message_id: str, project: Path) -> bytes:
    _, _, key = load(project)
    to = tokens.reply_address("replies@notes.example.com", tokens.make(key, "reply", 1, 1))
    raw = forged_reply(sender, "<x@y>", "x" * 30_000, message_id, to=to)
    return raw.replace(b"Subject: Re: The job is not the work", f"Subject: {subject}".encode())


def poll(project: Path, *messages: bytes) -> None:
    box = mailbox.Maildir(project / "Maildir", create=True)
    for raw in messages:
        box.add(raw)
    result = cli(project, "inbound", "poll")
    assert result.returncode == 0, result.stderr.decode()


def test_a_large_message_from_a_forged_victim_mails_nobody(project: Path) -> None:
    """The attack as written: the attacker's own valid reply token, From the victim."""
    poll(project, large(f"<{VICTIM}>", "Buy cheap watches", "<big-1@evil>", project))
    assert notices(project) == {}


def test_the_mta_is_never_asked_to_bounce_a_large_message_even_from_a_reader(
    project: Path,
) -> None:
    """The attack as written: a large message From a reader (From alone) through the pipe used
    to exit 65, so the MTA bounced it to the envelope sender, which the attacker chooses. Now
    exit 0, and only the reader is told, at the address on record."""
    stranger = cli(
        project, "inbound", "receive", stdin=large(f"<{VICTIM}>", "Hi", "<b3@x>", project)
    )
    assert stranger.returncode == 0 and b"shorter" not in stranger.stdout + stranger.stderr
    reader = cli(
        project, "inbound", "receive", stdin=large(f"<{MARGARET}>", "Hi", "<b4@x>", project)
    )
    assert reader.returncode == 0 and b"shorter" not in reader.stdout + reader.stderr
    assert notices(project) == {MARGARET: "Not delivered: Hi"}


def test_a_large_reply_from_the_reader_is_answered_at_their_address_on_record(
    project: Path,
) -> None:
    poll(project, large(f"Margaret <{MARGARET.upper()}>", "Re: the column", "<big-2@ok>", project))
    assert notices(project) == {MARGARET: "Not delivered: Re: the column"}


def test_an_unsubscribe_confirmation_goes_to_the_address_on_record_only(project: Path) -> None:
    settings, engine, key = load(project)
    to = tokens.reply_address(settings.mail.reply_address, tokens.make(key, "unsubscribe", 1, 1))
    raw = forged_reply(f"<{VICTIM}>", "<x@y>", "unsubscribe", "<u-1@x>", to=to)
    outcome = pipeline.process(Runtime(settings, engine=engine, key=key), raw, source="test")
    assert outcome.kind.value == "unsubscribe"
    assert status_of(project, MARGARET) == {"unsubscribed"}
    assert set(notices(project)) == {MARGARET}


def readings(data: bytes) -> set[str]:
    """The Subject of message bytes as three common decoders read it: the email package's
    parser, and RFC 2047 words joined after unfolding and without unfolding."""
    lines = data.split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("Subject: "))
    end = next(
        i for i in range(start + 1, len(lines) + 1) if i == len(lines) or lines[i][:1] != " "
    )
    folded = "\r\n".join(lines[start:end]).removeprefix("Subject: ")

    def joined(raw: str) -> str:
        return "".join(
            part.decode(charset or "ascii") if isinstance(part, bytes) else part
            for part, charset in decode_header(raw)
        )

    parsed = str(message_from_bytes(data, policy=policy.default)["Subject"])
    return {parsed, joined(folded.replace("\r\n ", " ")), joined(folded)}


def test_a_forwarded_reply_keeps_the_spaces_of_its_subject(project: Path) -> None:
    settings, engine, key = load(project)
    title = "The job is not the work — and that’s the point"
    # Names of every length move the fold to every place around the dash.
    for length in range(1, 40):
        raw = fixture("gmail_en.eml").replace(b"Margaret Holloway", b"N" * length, 1)
        raw = raw.replace(b"<CAF3x9q7pY2=gmail-en-0001@", f"<n{length}@".encode())
        outcome = pipeline.process(Runtime(settings, engine=engine, key=key), raw, source="test")
        [path] = (project / "outbox").glob(f"reply{outcome.reply_id:07d}-*.eml")
        assert readings(path.read_bytes()) == {f"{'N' * length} replied to '{title}'"}, length
