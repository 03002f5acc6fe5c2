"""Shared fixtures: a copy of the shipped project in a temporary folder, and a real SMTP server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The shipped settings, templates, lists and example feed, copied so tests can edit them."""
    for name in ("templates", "subscribers", "examples"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "settings.toml", tmp_path / "settings.toml")
    return tmp_path


def run_cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `syndicate` command, in a subprocess, against a project folder."""
    return subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(project / "settings.toml"), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


def set_setting(config: Path, old: str, new: str) -> None:
    text = config.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {config}"
    config.write_text(text.replace(old, new, 1), encoding="utf-8")


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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_smtp(handler: object) -> Iterator[tuple[Controller, object]]:
    """A real aiosmtpd server on 127.0.0.1 with this handler, for the length of the block."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


@pytest.fixture
def smtp_server():
    with running_smtp(RecordingHandler()) as server:
        yield server
