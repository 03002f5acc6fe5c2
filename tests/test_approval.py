"""Manual approval: the preview reaches the author over real SMTP, and a reply saying "approve"
releases the send — from the author's address only, with a valid approve token only."""

from __future__ import annotations

import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from syndicate import db, tokens
from syndicate.inbound.steps.approve import handle_approval_reply
from syndicate.models import SendState
from syndicate.runtime import Runtime
from syndicate.scheduling import jobs
from tests.support.scheduling import Blog, configure, utc
from tests.support.scheduling import sends as all_sends

parse = BytesParser(policy=policy.default).parsebytes


@pytest.fixture
def awaiting(project: Path, smtp_server):
    """A manual newsletter send whose preview went to the author through the SMTP server."""
    controller, handler = smtp_server
    blog = Blog(project)
    blog.publish("Old")
    cfg = configure(
        project,
        feed__first_run="none",
        newsletter__policy="manual",
        column__enabled=False,
        transport__kind="smtp",
        inbound__trusted_authserv_id="mx.notes.example.com",
        **{"transport.smtp__host": "127.0.0.1", "transport.smtp__security": "none"},
    )
    text = (project / "settings.toml").read_text()
    (project / "settings.toml").write_text(text.replace("port = 587", f"port = {controller.port}"))
    cfg = configure(project)
    engine = db.connect(cfg.database_url)
    jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 23, 12))
    blog.publish("Please approve me")
    report = jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 24, 15))
    assert report.previews == 1 and report.summaries == []
    [received] = handler.messages
    assert received.rcpt_tos == ["jane@example.com"]
    preview = parse(received.data)
    [send] = all_sends(engine)
    return cfg, engine, handler, preview, send.id


def reply(preview: EmailMessage, sender: str, body: str, to: str | None = None) -> EmailMessage:
    """The author's mail client answering the preview (quoted text below the answer)."""
    msg = EmailMessage()
    # What the author's own MX (the trusted authserv-id) adds after checking DKIM and DMARC.
    domain = sender.rsplit("@", 1)[1].lower()
    msg["Authentication-Results"] = (
        f"mx.notes.example.com; dkim=pass header.d={domain}; dmarc=pass header.from={domain}"
    )
    msg["From"] = f"Someone <{sender}>"
    msg["To"] = to or str(preview["Reply-To"])
    msg["Subject"] = "Re: " + str(preview["Subject"])
    msg["In-Reply-To"] = str(preview["Message-ID"])
    msg.set_content(body + "\n\n> A new newsletter is ready.\n> approve\n")
    return parse(msg.as_bytes())


def state(engine, send_id: int) -> str:
    with engine.connect() as conn:
        return db.sends.send_state(conn, send_id)


def test_preview_tells_the_author_what_will_go_out_and_how_to_approve(awaiting) -> None:
    cfg, engine, _, preview, send_id = awaiting
    key = db.meta.hmac_key(engine, cfg.hmac_key_from_env())
    reply_to = preview["Reply-To"].addresses[0].addr_spec
    claim = tokens.verify(key, tokens.token_from_address(reply_to), "approve")
    assert claim is not None and claim.send_id == send_id
    text = preview.get_body(("plain",)).get_content()
    assert "reply to this email with the word:  approve" in text.lower()
    assert f"syndicate approve {send_id}" in text and "4 readers" in text
    [attached] = [p for p in preview.iter_attachments() if p.get_content_type() == "message/rfc822"]
    edition = attached.get_content()
    assert str(edition["Subject"]) == "Please approve me"
    assert "The whole of Please approve me." in edition.get_body(("plain",)).get_content()


def test_approval_by_reply_from_the_author_releases_the_send(awaiting) -> None:
    cfg, engine, handler, preview, send_id = awaiting
    result = handle_approval_reply(
        Runtime(cfg, engine=engine), reply(preview, "Jane@Example.com", "Approve!")
    )
    assert (result.accepted, result.send_id) == (True, send_id)
    with engine.connect() as conn:
        send = db.sends.get_send(conn, send_id)
    assert send.state == SendState.SCHEDULED.value and send.approved_by == "reply"
    report = jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 24, 16))
    assert [s.sent for s in report.summaries] == [4]
    assert len(handler.messages) == 1 + 1 + 4  # preview, confirmation, the edition
    again = handle_approval_reply(
        Runtime(cfg, engine=engine), reply(preview, "jane@example.com", "approve")
    )
    assert not again.accepted and "done" in again.reason


def test_approval_by_reply_from_anyone_else_is_refused(awaiting) -> None:
    cfg, engine, _, preview, send_id = awaiting
    result = handle_approval_reply(
        Runtime(cfg, engine=engine), reply(preview, "intruder@example.org", "approve")
    )
    assert not result.accepted and "jane@example.com" in result.reason
    assert state(engine, send_id) == SendState.AWAITING_APPROVAL.value
    assert jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 24, 16)).summaries == []


def test_forged_or_wrong_tokens_and_other_words_do_not_approve(awaiting) -> None:
    cfg, engine, _, preview, send_id = awaiting
    key = db.meta.hmac_key(engine, cfg.hmac_key_from_env())
    reply_token = tokens.make(key, "reply", send_id, 0)
    forged = tokens.make(b"not the key", "approve", send_id, 0, issued_at=int(time.time()))
    for to in (
        tokens.reply_address(cfg.mail.reply_address, reply_token),
        tokens.reply_address(cfg.mail.reply_address, forged),
        cfg.mail.reply_address,
    ):
        result = handle_approval_reply(
            Runtime(cfg, engine=engine), reply(preview, "jane@example.com", "approve", to)
        )
        assert not result.accepted and "token" in result.reason
    not_yes = handle_approval_reply(
        Runtime(cfg, engine=engine), reply(preview, "jane@example.com", "Not yet")
    )
    assert not not_yes.accepted and "approve" in not_yes.reason
    spoofed = reply(preview, "jane@example.com", "approve")
    spoofed["Authentication-Results"] = (
        "mx.example.com; spf=fail; dmarc=fail header.from=example.com"
    )
    assert not handle_approval_reply(Runtime(cfg, engine=engine), spoofed).accepted
    assert state(engine, send_id) == SendState.AWAITING_APPROVAL.value


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("jane@example.com", SendState.SCHEDULED),
        ("intruder@example.org", SendState.AWAITING_APPROVAL),
    ],
)
def test_approval_arriving_as_inbound_mail_goes_through_the_reply_pipeline(
    awaiting, sender: str, expected: SendState
) -> None:
    """The real path: the author's answer comes in like any reply (pipe, IMAP, webhook)."""
    from syndicate.inbound import pipeline

    cfg, engine, _, preview, send_id = awaiting
    key = db.meta.hmac_key(engine, cfg.hmac_key_from_env())
    raw = reply(preview, sender, "approve").as_bytes()
    outcome = pipeline.process(Runtime(cfg, engine=engine, key=key), raw, source="test")
    assert outcome.kind.value == "approval"
    assert state(engine, send_id) == expected.value
    assert outcome.detail.startswith("approved" if sender.startswith("jane") else "not approved")
