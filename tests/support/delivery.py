"""Helpers for the delivery tests: a fault-injecting SMTP server, a fake clock, bulk recipients."""

from __future__ import annotations

import html
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from pathlib import Path

from aiosmtpd.smtp import Envelope, Session
from sqlalchemy import insert

from syndicate import db, settings
from syndicate.db import Engine
from syndicate.delivery import notices
from syndicate.delivery.message import Mailbox, OutboundMessage
from syndicate.delivery.transports.base import Write
from syndicate.feedwatch import watch
from syndicate.headers import one_line
from tests.conftest import set_setting


class FakeClock:
    """Time that only moves when something sleeps: back-off waits cost nothing in tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime.now(UTC)
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.current += timedelta(seconds=seconds)


@dataclass
class FaultyHandler:
    """An aiosmtpd handler that misbehaves like real servers do, at random (seeded):

    - `p_451` of RCPTs answered 451 (try later), `p_421` of DATAs answered 421 (closing),
    - `p_drop` of DATAs: the connection is cut before any answer (message not accepted),
    - addresses in `refuse` are answered 550.
    Only messages answered 250 are counted in `delivered`.
    """

    seed: int = 1
    p_451: float = 0.0
    p_421: float = 0.0
    p_drop: float = 0.0
    refuse: set[str] = field(default_factory=set)
    delivered: Counter = field(default_factory=Counter)
    messages: list[bytes] = field(default_factory=list)
    faults: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    keep_messages: bool = False

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    def _roll(self, p: float) -> bool:
        with self.lock:
            return self.random.random() < p

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address, options):
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        if self._roll(self.p_451):
            self.faults["451"] += 1
            return "451 4.3.0 Temporary failure, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session: Session, envelope: Envelope) -> str:
        if self._roll(self.p_drop):
            self.faults["drop"] += 1
            server.transport.close()
            return "421 4.3.2 connection cut"  # never reaches the client
        if self._roll(self.p_421):
            self.faults["421"] += 1
            return "421 4.3.2 Service shutting down, closing transmission channel"
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.delivered[rcpt] += 1
            if self.keep_messages:
                self.messages.append(envelope.original_content or b"")
        return "250 Message accepted"


def use_smtp(project: Path, port: int, *, batch_size: int = 20, connections: int = 2) -> None:
    config = project / "settings.toml"
    set_setting(config, 'kind = "outbox"', 'kind = "smtp"')
    set_setting(config, 'host = "localhost"\nport = 587', f'host = "127.0.0.1"\nport = {port}')
    set_setting(config, 'security = "starttls"', 'security = "none"')
    set_setting(config, "batch_size = 100", f"batch_size = {batch_size}")
    set_setting(config, "connections = 2", f"connections = {connections}")


def add_readers(engine: Engine, count: int, start: int = 0) -> list[str]:
    """`count` active readers, inserted in one statement (the CSV path is not under test)."""
    stamp = db.now()
    emails = [f"reader{i:06d}@example.org" for i in range(start, start + count)]
    with engine.begin() as conn:
        conn.execute(
            insert(db.schema.recipients),
            [
                {
                    "kind": "reader",
                    "email": email,
                    "email_key": email,
                    "name": f"Reader Nummer {i} Ä" if i % 3 == 0 else f"Reader {i}",
                    "status": "active",
                    "fields": {},
                    "created_at": stamp,
                    "updated_at": stamp,
                }
                for i, email in enumerate(emails, start)
            ],
        )
    return emails


def newsletter_send(project: Path) -> tuple[settings.Settings, Engine, int]:
    """Settings, database and the newsletter send of the newest post (feed read, send planned)."""
    cfg = settings.load(project / "settings.toml")
    engine = db.connect(cfg.database_url)
    watch.poll(engine, cfg)
    with engine.connect() as conn:
        send = next(s for s in db.sends.due_sends(conn, db.now()) if s.channel == "newsletter")
    return cfg, engine, send.id


def note(email: str, number: int = 1, text: str = "hello", subject: str = "hi") -> OutboundMessage:
    """A small one-off message to `email`, numbered `number` (its result's delivery_id)."""
    return notices.notice(
        sender=Mailbox("Jane Marlowe", "jane@notes.example.com"),
        to=Mailbox("", email),
        subject=subject,
        text=text,
        date=datetime(2026, 11, 26, 15, 0, tzinfo=UTC),
        message_id=f"<note.{number}@notes.example.com>",
        label="d",
        number=number,
    )


def exactly(payloads: list[bytes]) -> tuple[list[OutboundMessage], Write]:
    """Messages and a `write` that gives each the exact bytes in `payloads`, for a byte
    transport's `carry`: tests of the wire itself (r1@example.org gets payloads[0] …)."""
    messages = [note(f"r{i}@example.org", i) for i in range(1, len(payloads) + 1)]
    return messages, lambda message: payloads[message.delivery_id - 1]


def reference_email(message: OutboundMessage) -> EmailMessage:
    """The same message built by the standard library's `EmailMessage`, independently of
    `delivery/mime.py`: the oracle the one MIME writer's bytes are compared with."""
    content = message.content
    values = message.values if content.personal else {}

    def filled(template: str, escape: bool) -> str:
        for key, value in values.items():
            template = template.replace(key, html.escape(value, quote=True) if escape else value)
        return template

    msg = EmailMessage()
    msg["From"] = Address(one_line(content.sender.name), addr_spec=content.sender.address)
    msg["To"] = Address(one_line(message.recipient.name), addr_spec=message.recipient.email)
    msg["Subject"] = one_line(content.subject)
    msg["Date"] = format_datetime(content.date)
    msg["Message-ID"] = message.message_id
    if message.reply_to is not None:
        name, address = message.reply_to
        msg["Reply-To"] = Address(one_line(name), addr_spec=address)
    for name, value in (*content.headers, *message.headers):
        msg[name] = value
    msg.set_content(filled(content.text, escape=False))
    if content.html:
        msg.add_alternative(filled(content.html, escape=True), subtype="html")
    for attachment in content.attachments:
        maintype, _, subtype = attachment.content_type.split(";")[0].strip().partition("/")
        if maintype == "text":
            msg.add_attachment(
                attachment.data.decode(),
                subtype=subtype,
                charset="utf-8",
                cte="quoted-printable",
                filename=attachment.filename,
            )
        elif maintype == "message":
            embedded = BytesParser(policy=policy.default).parsebytes(attachment.data)
            msg.add_attachment(embedded, filename=attachment.filename)
        else:
            msg.add_attachment(
                attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
            )
    return msg
