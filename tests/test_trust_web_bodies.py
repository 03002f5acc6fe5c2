"""Finding 5, against a real `syndicate serve` (uvicorn) process: a huge chunked body (no
Content-Length) posted to any route is cut off at that route's limit while it streams (413), the
Inbound Parse endpoint refuses a stranger before reading a byte, and the server's peak memory
(VmHWM) stays under 150 MB whatever was posted.

Before: the 300 MB body was read whole before the token or signature was checked (104 → 788 MB).
"""

from __future__ import annotations

import base64
import os
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port, set_setting
from tests.web_support import SigningKey

MB = 1024 * 1024
ATTACK_BYTES = 300 * MB
MEMORY_CEILING_KB = 150 * 1024
PARSE_SECRET = "parse-secret-for-bodies"


@dataclass
class Served:
    port: int
    process: subprocess.Popen
    log: Path

    def peak_rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc status")


def start_serve(project: Path, env: dict[str, str]) -> Served:
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "syndicate", "--config", str(project / "settings.toml")),
            *("serve", "--host", "127.0.0.1", "--port", str(port)),
        ],
        cwd=project,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=(project / "serve.log").open("wb"),
    )
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, "syndicate serve exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return Served(port, process, project / "serve.log")
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "syndicate serve did not come up"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the module: only strangers post to it, so its peak memory is theirs."""
    project = copy_project(tmp_path_factory.mktemp("bodies"))
    set_setting(project / "settings.toml", "max_connections = 100", "max_connections = 20")
    yield from serving(project)


@pytest.fixture
def served_alone(project: Path) -> Iterator[Served]:
    yield from serving(project)


def copy_project(folder: Path) -> Path:
    for name in ("templates", "subscribers", "examples"):
        shutil.copytree(ROOT / name, folder / name)
    shutil.copy(ROOT / "settings.toml", folder / "settings.toml")
    return folder


def serving(project: Path) -> Iterator[Served]:
    signing = SigningKey()
    env = {
        "SYNDICATE_SECRET_KEY": "bodies-test-key-at-least-32-bytes-long",
        "SYNDICATE_SENDGRID_WEBHOOK_KEY": signing.public_b64,
        "SYNDICATE_INBOUND_PARSE_SECRET": PARSE_SECRET,
    }
    server = start_serve(project, env)
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)


@dataclass
class Outcome:
    status: int | None  # None: the server hung up without a readable answer
    sent: int  # body bytes written before the server answered or hung up


def filler() -> Iterator[bytes]:
    while True:
        yield b"x" * (64 * 1024)


def post_chunked(
    port: int,
    path: str,
    headers: dict[str, str],
    total: int = ATTACK_BYTES,
    pieces: Iterable[bytes] | None = None,
) -> Outcome:
    """Streams up to `total` bytes as a chunked POST, stopping as soon as the server answers."""
    source = iter(pieces if pieces is not None else filler())
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        sock.sendall(head.encode())
        sent, pending = 0, b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 5)
            if readable:
                break
            if not writable:
                continue
            if not pending:
                if sent >= total:
                    sock.sendall(b"0\r\n\r\n")
                    break
                piece = next(source)
                pending, sent = f"{len(piece):x}\r\n".encode() + piece + b"\r\n", sent + len(piece)
            try:
                pending = pending[sock.send(pending) :]
            except (BrokenPipeError, ConnectionResetError):
                break
        return Outcome(_status(sock), sent)
    finally:
        sock.close()


def _status(sock: socket.socket) -> int | None:
    sock.settimeout(10)
    data = b""
    try:
        while b"\r\n" not in data:
            more = sock.recv(4096)
            if not more:
                break
            data += more
    except (ConnectionResetError, TimeoutError):
        pass
    first = data.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) >= 2 and first[1].isdigit() else None


def basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"sendgrid:{password}".encode()).decode()


def test_huge_chunked_bodies_are_cut_off_and_memory_stays_bounded(served: Served) -> None:
    fresh = {
        "X-Twilio-Email-Event-Webhook-Timestamp": str(int(time.time())),
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(b"forged").decode(),
        "Content-Type": "application/json",
    }
    attacks = {
        "unsubscribe, urlencoded": (
            "/unsubscribe/u1-1-aaaaaaaaaaaaaaaa",
            {"Content-Type": "application/x-www-form-urlencoded"},
            64 * 1024,
        ),
        "unsubscribe, multipart": (
            "/unsubscribe/u1-1-aaaaaaaaaaaaaaaa",
            {"Content-Type": "multipart/form-data; boundary=b"},
            64 * 1024,
        ),
        "subscribe form": (
            "/subscribe",
            {"Content-Type": "application/x-www-form-urlencoded"},
            64 * 1024,
        ),
        # Confirming reads no body at all: the forged token is refused at once.
        "confirm": ("/confirm/anything", {}, 0),
        "event webhook, fresh timestamp, forged signature": (
            "/webhooks/sendgrid/events",
            fresh,
            5_000_000,
        ),
    }
    for name, (path, headers, limit) in attacks.items():
        outcome = post_chunked(served.port, path, headers)
        expected = 400 if limit == 0 else 413
        assert outcome.status == expected, f"{name}: answered {outcome.status}"
        # Cut off near the limit (plus what the socket buffers held), never read whole.
        assert outcome.sent < limit + 8 * MB, f"{name}: {outcome.sent} bytes accepted"

    # A stranger posting to Inbound Parse is refused before any of the body is read.
    for authorization in ({}, {"Authorization": basic("wrong")}, {"Authorization": "Bearer x"}):
        headers = {"Content-Type": "multipart/form-data; boundary=b", **authorization}
        outcome = post_chunked(served.port, "/webhooks/sendgrid/inbound", headers)
        assert outcome.status == 401 and outcome.sent < 8 * MB, outcome

    assert served.peak_rss_kb() < MEMORY_CEILING_KB, f"peak RSS {served.peak_rss_kb()} kB"
    assert httpx.get(f"http://127.0.0.1:{served.port}/healthz").status_code == 200


def head_only(port: int, path: str, length: str) -> int | None:
    """The status answered to a POST that declares `length` and sends no body at all."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n\r\n".encode()
        )
        return _status(sock)


def test_a_declared_length_over_the_limit_is_refused_before_reading(served: Served) -> None:
    assert head_only(served.port, "/unsubscribe/u1-1-aaaaaaaaaaaaaaaa", str(ATTACK_BYTES)) == 413
    assert head_only(served.port, "/subscribe", "65537") == 413
    assert head_only(served.port, "/webhooks/sendgrid/events", str(ATTACK_BYTES)) == 413
    # uvicorn itself turns away a length that is not a number.
    assert head_only(served.port, "/subscribe", "-1") == 400


def many_fields(size: int) -> Iterator[bytes]:
    """multipart/form-data fields of `size` bytes each, one after another, without end."""
    number = 0
    while True:
        number += 1
        yield f'--b\r\nContent-Disposition: form-data; name="f{number}"\r\n\r\n'.encode()
        for _ in range(size // (64 * 1024)):
            yield b"x" * (64 * 1024)
        yield b"\r\n"


def test_the_inbound_parse_post_of_the_provider_is_bounded_too(served_alone: Served) -> None:
    """Authenticated, each field stays under SendGrid's own 30 MB and the whole form under that
    plus 1 MB: 20 MB fields one after another (the old 1,000 fields of 40 MB) are cut off."""
    headers = {
        "Content-Type": "multipart/form-data; boundary=b",
        "Authorization": basic(PARSE_SECRET),
    }
    outcome = post_chunked(
        served_alone.port, "/webhooks/sendgrid/inbound", headers, 200 * MB, many_fields(20 * MB)
    )
    assert outcome.status == 413, outcome
    assert 30 * MB < outcome.sent < 40 * MB, outcome


def test_at_most_four_event_bodies_are_read_at_once(served: Served) -> None:
    """Unsigned bodies are read before the signature can be checked: a fifth concurrent one is
    turned away at once (503, which SendGrid retries) instead of adding up in memory."""
    head = (
        "POST /webhooks/sendgrid/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
        f"X-Twilio-Email-Event-Webhook-Timestamp: {int(time.time())}\r\n"
        "X-Twilio-Email-Event-Webhook-Signature: Zm9yZ2Vk\r\n\r\n1\r\n[\r\n"
    ).encode()
    slow = [socket.create_connection(("127.0.0.1", served.port), timeout=10) for _ in range(4)]
    try:
        for sock in slow:
            sock.sendall(head)
        time.sleep(1.0)  # the four handlers are now waiting for the rest of their bodies
        fifth = httpx.post(
            f"http://127.0.0.1:{served.port}/webhooks/sendgrid/events",
            content=b"[]",
            headers={
                "X-Twilio-Email-Event-Webhook-Timestamp": str(int(time.time())),
                "X-Twilio-Email-Event-Webhook-Signature": "Zm9yZ2Vk",
            },
        )
        assert fifth.status_code == 503
    finally:
        for sock in slow:
            sock.close()
    time.sleep(0.5)
    later = httpx.post(
        f"http://127.0.0.1:{served.port}/webhooks/sendgrid/events",
        content=b"[]",
        headers={
            "X-Twilio-Email-Event-Webhook-Timestamp": str(int(time.time())),
            "X-Twilio-Email-Event-Webhook-Signature": "Zm9yZ2Vk",
        },
    )
    assert later.status_code == 401  # read, then refused for its forged signature
    # The four that hung up mid-body are one log line each, never a traceback.
    log = served.log.read_text()
    assert "Traceback" not in log
    assert log.count("client disconnected mid-body") == 4


def test_slow_clients_past_max_connections_are_turned_away(served: Served) -> None:
    """25 clients that send headers and a trickle of body: past web.max_connections (20 here)
    the server answers 503 at once instead of holding them all."""
    head = (
        b"POST /unsubscribe/u1-1-aaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\n1\r\nx\r\n"
    )
    slow = []
    try:
        for _ in range(25):
            sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
            sock.sendall(head)
            slow.append(sock)
            time.sleep(0.02)
        time.sleep(1.0)
        answered = [sock for sock in slow if select.select([sock], [], [], 0)[0]]
        statuses = [_status(sock) for sock in answered]
        assert statuses and set(statuses) == {503}, statuses
        assert 5 <= len(statuses) <= 10, statuses
    finally:
        for sock in slow:
            sock.close()
    time.sleep(0.5)
    assert httpx.get(f"http://127.0.0.1:{served.port}/healthz").status_code == 200
