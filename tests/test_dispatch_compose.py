"""The one MIME writer's bytes mean exactly what the standard library's EmailMessage, built
from the same message value, means (tests/delivery_support.reference_email)."""

from __future__ import annotations

import re
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import select

from syndicate import db, settings
from syndicate.delivery import dispatch
from syndicate.delivery.compose import Composer, Sender, compose
from syndicate.delivery.mime import as_bytes
from syndicate.feedwatch import watch
from syndicate.models import Attachment, Channel, Edition, Recipient, RecipientKind
from syndicate.render import EditionCache, make_environment
from syndicate.render import placeholders as ph
from syndicate.runtime import Runtime
from tests.support.delivery import reference_email

PARSER = BytesParser(policy=policy.default)

RECIPIENTS = [
    Recipient(11, RecipientKind.READER, "ann@example.org", "Ann Lee"),
    Recipient(12, RecipientKind.READER, "zoe.perez@example.org", "Zoë Pérez"),
    Recipient(13, RecipientKind.READER, "q@example.org", 'O\'Brien, "Q" <the boss> & Co'),
    Recipient(14, RecipientKind.READER, "long@example.org", "Ünïcödé " * 12 + "Name"),
    Recipient(15, RecipientKind.READER, "noname@example.org", ""),
    Recipient(16, RecipientKind.EDITOR, "ed@example.org", "Line\r\nBreak\tName"),
]

SENDER = Sender(
    name="Jane Marlowe",
    from_address="jane@notes.example.com",
    reply_address="replies@notes.example.com",
    base_url="https://notes.example.com/newsletter",
    list_name="Notes from the Margin",
    list_id="newsletter.notes.example.com",
    key=b"k" * 32,
)


def _edition_variants(project: Path) -> list[Edition]:
    cfg = settings.load(project / "settings.toml")
    engine = db.connect(cfg.database_url)
    watch.poll(engine, cfg)
    with engine.connect() as conn:
        post = db.posts.find_post(conn, "latest")
    env = make_environment(cfg.path(cfg.paths.templates))
    real = [EditionCache(post, c, cfg, env).for_recipient(None) for c in Channel]
    awkward = Edition(
        post_id=1,
        channel=Channel.NEWSLETTER,
        subject="Ünïcode — “quotes” and a very long subject line " * 3,
        html=(
            f"<p>Hi {ph.NAME} &amp; {ph.FIRST_NAME}</p><p>{'x' * 2000}</p>\n"
            f"<a href='{ph.UNSUBSCRIBE_URL}'>u</a>   \n.\n.leading dot\nFrom here\n"
            f"=3D not an escape, tab\tend\t\n{ph.EMAIL} {ph.REPLY_ADDRESS} {ph.GREETING_NAME}"
        ),
        text=f"Dear {ph.NAME},\n\n{'é' * 600}\ntrailing space \n{ph.UNSUBSCRIBE_MAILTO}\n",
        attachments=(
            Attachment("draft.txt", "text/plain; charset=utf-8", "Entwurf ü\n".encode()),
            Attachment("photo.bin", "application/octet-stream", bytes(range(256)) * 40),
        ),
    )
    return [*real, awkward]


def _headers(msg: EmailMessage) -> dict[str, str]:
    skip = {"content-type", "content-transfer-encoding", "mime-version"}
    return {k.lower(): " ".join(str(v).split()) for k, v in msg.items() if k.lower() not in skip}


@pytest.mark.parametrize("recipient", RECIPIENTS, ids=lambda r: str(r.id))
def test_fast_bytes_equal_the_reference_message(project: Path, recipient: Recipient) -> None:
    date = db.now()
    for edition in _edition_variants(project):
        message = compose(edition, recipient, 3, SENDER, date)
        fast_bytes = as_bytes(message)
        slow = PARSER.parsebytes(reference_email(message).as_bytes(policy=policy.SMTP))
        fast = PARSER.parsebytes(fast_bytes)

        # Wire format: CRLF only, no line over 998 bytes, 7-bit clean.
        assert b"\n" not in fast_bytes.replace(b"\r\n", b"")
        assert max(len(line) for line in fast_bytes.split(b"\r\n")) <= 998
        assert fast_bytes.isascii()
        assert all(not part.defects for part in fast.walk()), [p.defects for p in fast.walk()]

        fast_headers, slow_headers = _headers(fast), _headers(slow)
        # RFC 2047 words decode to the exact name (Python's parser may add a space where the
        # words are folded, never inside a word; the reference path splits words).
        exact = " ".join(recipient.name.split())
        if not exact.isascii():
            head = fast_bytes.split(b"\r\n\r\n")[0].decode()
            raw_to = head.split("To: ", 1)[1].split(" <", 1)[0].replace("\r\n", "")
            assert str(make_header(decode_header(raw_to))) == exact
        assert fast["To"].addresses[0].display_name.split() == exact.split()
        assert fast["To"].addresses[0].addr_spec == recipient.email
        del fast_headers["to"], slow_headers["to"]
        assert fast_headers == slow_headers
        assert fast.get_content_type() == slow.get_content_type()
        for kind in ("plain", "html"):
            # Text is compared in canonical form: the reference base64-encodes LF line ends.
            fast_text = fast.get_body((kind,)).get_content().replace("\r\n", "\n")
            slow_text = slow.get_body((kind,)).get_content().replace("\r\n", "\n")
            assert fast_text == slow_text
        fast_files = [
            (a.get_filename(), a.get_content_type(), a.get_content())
            for a in fast.iter_attachments()
        ]
        slow_files = [
            (a.get_filename(), a.get_content_type(), a.get_content())
            for a in slow.iter_attachments()
        ]
        assert fast_files == slow_files and len(fast_files) == len(edition.attachments)


def test_html_values_are_escaped_and_text_values_are_not(project: Path) -> None:
    edition = _edition_variants(project)[-1]
    recipient = RECIPIENTS[2]
    msg = PARSER.parsebytes(as_bytes(compose(edition, recipient, 3, SENDER, db.now())))
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "O&#x27;Brien, &quot;Q&quot; &lt;the boss&gt; &amp; Co" in html
    assert "<the boss>" not in html
    assert text.startswith('Dear O\'Brien, "Q" <the boss> & Co,')
    assert "%%" not in html and "%%" not in text


def test_the_dispatch_composer_builds_each_edition_once(project: Path) -> None:
    cfg = settings.load(project / "settings.toml")
    engine = db.connect(cfg.database_url)
    watch.poll(engine, cfg)
    with engine.connect() as conn:
        post = db.posts.find_post(conn, "latest")
    env = make_environment(cfg.path(cfg.paths.templates))
    editions = EditionCache(post, Channel.NEWSLETTER, cfg, env)
    composer = Composer(editions, SENDER, 5, db.now())
    messages = [composer.message(i, r) for i, r in enumerate(RECIPIENTS[:4])]
    assert len({id(m.content) for m in messages}) == 1  # one Content: encoded once
    ids = [PARSER.parsebytes(as_bytes(m))["Message-ID"] for m in messages]
    assert ids == [m.message_id for m in messages]
    signed = r"<syndicate\.s5\.r\d+\.[0-9a-f]+\.[a-z2-7]{16}@notes\.example\.com>"
    assert all(re.fullmatch(signed, i) for i in ids)


def test_every_encoded_word_is_at_most_75_characters() -> None:
    from syndicate.delivery.mime import _fold_address

    name = "Ä" * 50 + " Jo " + "Ö" * 30
    header = _fold_address("To", name, "a@example.org").decode()
    words = re.findall(r"=\?utf-8\?[bq]\?[^?]*\?=", header)
    assert words and all(len(w) <= 75 for w in words)
    assert all(len(line) <= 78 for line in header.split("\r\n"))
    raw = header.removeprefix("To: ").rsplit(" <", 1)[0].replace("\r\n", "")
    assert str(make_header(decode_header(raw))) == name


def test_an_address_that_cannot_be_sent_fails_alone(project: Path, smtp_server) -> None:
    from tests.support.delivery import FakeClock, add_readers, newsletter_send, use_smtp

    controller, handler = smtp_server
    use_smtp(project, controller.port, batch_size=10, connections=1)
    cfg, engine, send_id = newsletter_send(project)
    add_readers(engine, 3)
    with engine.begin() as conn:
        db.recipients.upsert_recipient(conn, RecipientKind.READER, "zoë@exämple.org", "Zoë", {})
    from syndicate.delivery.transports import make_transport

    runtime = Runtime(cfg, engine=engine, clock=FakeClock())
    summary = dispatch.run_send(runtime, send_id, make_transport(cfg))
    assert (summary.sent, summary.failed) == (3, 1)
    with engine.connect() as conn:
        row = next(r for r in db.deliveries.iter_deliveries(conn, send_id) if r.state == "failed")
        status = conn.execute(
            select(db.schema.recipients.c.status).where(
                db.schema.recipients.c.id == row.recipient_id
            )
        ).scalar_one()
    assert row.email == "zoë@exämple.org"
    assert row.detail.startswith("cannot compose a message for 'zoë@exämple.org'")
    assert status == "active"  # not the address's fault: not marked bounced
    assert len(handler.messages) == 3


def test_a_content_is_encoded_once_however_many_recipients(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The design the fan-out speed rests on: one edition's MIME is built once per send."""
    from syndicate.delivery import mime

    builds: list[object] = []
    real_build = mime._Encoded.build
    monkeypatch.setattr(
        mime._Encoded, "build", classmethod(lambda cls, c: builds.append(c) or real_build(c))
    )
    edition = _edition_variants(project)[0]
    composer = Composer(_StaticEditions(edition), SENDER, 5, db.now())
    written = [as_bytes(composer.message(r.id, r)) for r in RECIPIENTS]
    assert len(builds) == 1 and len(set(written)) == len(RECIPIENTS)


class _StaticEditions:
    def __init__(self, edition: Edition) -> None:
        self.edition = edition

    def for_recipient(self, recipient: Recipient | None = None) -> Edition:
        return self.edition
