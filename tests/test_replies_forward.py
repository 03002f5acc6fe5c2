"""The round trip at a real SMTP server (aiosmtpd on 127.0.0.1): a reader's reply is forwarded to
the author; the author answers it from a mail client; the answer reaches the reader threaded
under the reader's own message."""

from __future__ import annotations

import smtplib
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from syndicate.inbound import pipeline
from syndicate.models import ReplyKind, ReplyState
from syndicate.runtime import Runtime
from tests.conftest import free_port
from tests.support.inbound import fixture, load, sent_project, use_smtp


@pytest.fixture
def smtp_project(tmp_path: Path, smtp_server) -> tuple[Path, object]:
    controller, handler = smtp_server
    project = sent_project(tmp_path / "project")
    use_smtp(project, controller.port)
    return project, handler


def answer_as_a_mail_client_would(received: EmailMessage, words: str) -> EmailMessage:
    """What Thunderbird, Gmail or Outlook put in a reply (RFC 5322 3.6.4): To the Reply-To,
    In-Reply-To the message's Message-ID, References its References plus its Message-ID."""
    answer = EmailMessage()
    answer["From"] = "Jane Marlowe <jane@example.com>"
    answer["To"] = str(received["Reply-To"] or received["From"])
    answer["Subject"] = "Re: " + str(received["Subject"])
    answer["Message-ID"] = make_msgid("author", "example.com")
    answer["In-Reply-To"] = str(received["Message-ID"])
    answer["References"] = " ".join(
        filter(None, [str(received["References"] or ""), str(received["Message-ID"])])
    )
    answer.set_content(words)
    return answer


def test_forward_then_the_authors_answer_reaches_the_reader_threaded(smtp_project) -> None:
    project, handler = smtp_project
    settings, engine, key = load(project)
    reader_reply = fixture("gmail_en.eml")
    outcome = pipeline.process(
        Runtime(settings, engine=engine, key=key), reader_reply, source="test"
    )
    assert (outcome.kind, outcome.state) == (ReplyKind.COMMENT, ReplyState.FORWARDED)

    [forward] = handler.messages
    assert forward.rcpt_tos == ["jane@example.com"]
    assert forward.mail_from == "jane@notes.example.com"
    forwarded = message_from_bytes(forward.data, policy=policy.default)
    assert forwarded["Reply-To"].addresses[0].addr_spec == "margaret.holloway@example.com"
    assert forwarded["Auto-Submitted"] == "auto-forwarded"

    answer = answer_as_a_mail_client_would(forwarded, "Thank you, Margaret!")
    recipients = [a.addr_spec for a in answer["To"].addresses]
    with smtplib.SMTP("127.0.0.1", settings.transport.smtp.port) as client:
        client.send_message(answer, from_addr="jane@example.com", to_addrs=recipients)

    delivered = handler.messages[1]
    assert delivered.rcpt_tos == ["margaret.holloway@example.com"]
    got = message_from_bytes(delivered.data, policy=policy.default)
    readers_message = "<CAF3x9q7pY2=gmail-en-0001@mail.gmail.com>"
    assert got["In-Reply-To"] == readers_message
    assert got["References"].split() == ["<syndicate.s1.r1@notes.example.com>", readers_message]


def test_an_editors_answer_is_forwarded_with_the_publication(smtp_project) -> None:
    project, handler = smtp_project
    settings, engine, key = load(project)
    pipeline.process(
        Runtime(settings, engine=engine, key=key), fixture("editor_reply.eml"), source="test"
    )
    [forward] = handler.messages
    message = message_from_bytes(forward.data, policy=policy.default)
    assert (
        message["Subject"]
        == "Sam Okafor answered about 'The job is not the work — and that’s the point'"
    )
    body = message.get_content()
    assert "Sam Okafor (The Daily Herald) answered about your column" in body
    assert "trimmed to 780 words" in body


def test_an_unreachable_server_leaves_the_forward_pending_and_poll_retries_it(
    tmp_path: Path, smtp_server
) -> None:
    controller, handler = smtp_server
    project = sent_project(tmp_path / "project")
    use_smtp(project, free_port())  # nothing listens there
    settings, engine, key = load(project)
    outcome = pipeline.process(
        Runtime(settings, engine=engine, key=key), fixture("apple_en.eml"), source="test"
    )
    assert outcome.state is ReplyState.FORWARD_PENDING
    config = project / "settings.toml"
    text = config.read_text()
    config.write_text(
        text.replace(f"port = {settings.transport.smtp.port}", f"port = {controller.port}")
    )
    settings, engine, key = load(project)
    assert pipeline.retry_forwards(Runtime(settings, engine=engine)) == (1, 0)
    assert [m.rcpt_tos for m in handler.messages] == [["jane@example.com"]]


def test_an_unsubscribe_reply_is_confirmed_to_the_reader(smtp_project) -> None:
    project, handler = smtp_project
    settings, engine, key = load(project)
    outcome = pipeline.process(
        Runtime(settings, engine=engine, key=key), fixture("unsubscribe_de.eml"), source="test"
    )
    assert outcome.kind is ReplyKind.UNSUBSCRIBE
    [confirmation] = handler.messages
    assert confirmation.rcpt_tos == ["d.nakamura@example.net"]
    message = message_from_bytes(confirmation.data, policy=policy.default)
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["In-Reply-To"] == "<unsub-de-1@example.net>"
    assert "you have been unsubscribed" in message.get_content()
