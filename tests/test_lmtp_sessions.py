"""The daemon's LMTP sessions: a silent one is closed after IDLE_SECONDS, a slow message keeps
its session (the clock restarts with every line), and at MAX_SESSIONS with every session in the
middle of a message a newcomer gets 421 (the MTA retries; the pipe files it itself)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from syndicate.inbound.sources import lmtp
from tests.test_inbound_lmtp import listener, reply, runtime  # noqa: F401  (fixtures)


def session(path: Path) -> tuple[socket.socket, object]:
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.settimeout(15)
    raw.connect(str(path))
    replies = raw.makefile("rb")
    return raw, replies


def ask(raw: socket.socket, replies, line: bytes) -> bytes:
    raw.sendall(line + b"\r\n")
    while True:
        answer = replies.readline()
        if answer[3:4] != b"-":
            return answer


@pytest.fixture
def short_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lmtp, "IDLE_SECONDS", 1.0)


def test_a_silent_session_is_closed(short_idle, listener: lmtp.Listener) -> None:  # noqa: F811
    raw, replies = session(listener.path)
    with raw:
        assert replies.readline().startswith(b"220 ")
        started = time.monotonic()
        rest = replies.read()  # the server's last words, then end of file
        assert time.monotonic() - started < 10, "a silent session was kept open"
        assert rest == b"" or rest.startswith(b"421"), rest


def test_a_slow_message_keeps_its_session(short_idle, listener: lmtp.Listener) -> None:  # noqa: F811
    raw, replies = session(listener.path)
    with raw:
        assert replies.readline().startswith(b"220 ")
        for line in (b"LHLO mx.example.com", b"MAIL FROM:<ann@example.org>"):
            assert ask(raw, replies, line).startswith(b"250")
        assert ask(raw, replies, b"RCPT TO:<replies@example.com>").startswith(b"250")
        assert ask(raw, replies, b"DATA").startswith(b"354")
        lines = reply("slow-one").split(b"\r\n")
        for line in lines[:-1]:  # each line after a pause longer than half the idle time
            raw.sendall(line + b"\r\n")
            time.sleep(0.6)
        assert ask(raw, replies, b".").startswith(b"250"), "a slow message lost its session"


def test_at_the_cap_with_every_session_mid_message_a_newcomer_gets_421(
    monkeypatch: pytest.MonkeyPatch,
    listener: lmtp.Listener,  # noqa: F811
) -> None:
    monkeypatch.setattr(lmtp, "MAX_SESSIONS", 2)
    busy = []
    for _ in range(2):
        raw, replies = session(listener.path)
        assert replies.readline().startswith(b"220 ")
        assert ask(raw, replies, b"LHLO mx.example.com").startswith(b"250")
        assert ask(raw, replies, b"MAIL FROM:<ann@example.org>").startswith(b"250")
        assert ask(raw, replies, b"RCPT TO:<replies@example.com>").startswith(b"250")
        assert ask(raw, replies, b"DATA").startswith(b"354")
        raw.sendall(b"Subject: in the middle\r\n")
        busy.append(raw)
    try:
        raw, replies = session(listener.path)
        with raw:
            assert replies.readline().startswith(b"421 ")
        for one in busy:  # neither message in the middle was cut off
            one.sendall(b"\r\nstill writing\r\n.\r\n")
            assert one.makefile("rb").readline()[:1] in (b"2", b"5")
    finally:
        for one in busy:
            one.close()
