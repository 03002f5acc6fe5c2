"""A real aiosmtpd SMTP server on 127.0.0.1 that records what it is given."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: object


@dataclass
class RecordingHandler:
    """Stores every message and counts SMTP sessions; refuses addresses listed in `refuse`."""

    messages: list[Received] = field(default_factory=list)
    sessions: set[int] = field(default_factory=set)
    refuse: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address, options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.sessions.add(id(session))
            self.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content or b"",
                    session.peer,
                )
            )
        return "250 Message accepted"


def free_port() -> int:
    """A port the kernel just handed out (aiosmtpd's Controller cannot be given port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_smtp(handler: Any) -> Iterator[tuple[Controller, Any]]:
    """A real aiosmtpd server on 127.0.0.1 with this handler, for the length of the block."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()
