"""Helpers for the trust-by-email tests: hand-made hostile messages and what we stored."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select

from syndicate import db
from tests.support.inbound import load


def forged_reply(
    sender: str,
    in_reply_to: str,
    body: str = "unsubscribe",
    message_id: str = "<f-1@evil>",
    to: str = "replies@notes.example.com",
) -> bytes:
    """A reply anyone can write: a From line and a Message-ID to answer."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "Re: The job is not the work"
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = in_reply_to
    msg["References"] = in_reply_to
    msg.set_content(body)
    return msg.as_bytes()


def dsn(
    failed: str,
    *,
    message_id: str = "<dsn-1@mx.example.org>",
    returned_id: str = "<whatever@example.org>",
    to: str = "jane@notes.example.com",
    status: str = "5.1.1",
) -> bytes:
    """An RFC 3464 delivery status notification naming `failed`, returning headers that carry
    `returned_id` — anyone can write one."""
    action = "failed" if status.startswith("5") else "delayed"
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\n"
        f"To: {to}\n"
        f"Subject: Undelivered Mail Returned to Sender\n"
        f"Message-ID: {message_id}\n"
        f"MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n'
        f"\n--b\nContent-Type: text/plain\n\nI could not deliver your message to {failed}.\n"
        f"\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n"
        f"\nFinal-Recipient: rfc822; {failed}\nAction: {action}\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; 550 {status} No such user\n"
        f"\n--b\nContent-Type: text/rfc822-headers\n\nFrom: jane@notes.example.com\n"
        f"To: {failed}\nSubject: The job is not the work\nMessage-ID: {returned_id}\n"
        f"\n--b--\n"
    ).encode()


def status_of(project: Path, email: str) -> set[str]:
    _, engine, _ = load(project)
    with engine.connect() as conn:
        return set(
            conn.execute(
                select(db.schema.recipients.c.status).where(db.schema.recipients.c.email == email)
            ).scalars()
        )
