"""Finding 5, against a real `syndicate serve` (uvicorn) process: a huge chunked body (no
Content-Length) posted to any route is cut off at that route's limit while it streams (413), the
Inbound Parse endpoint refuses a stranger before reading a byte, and the server's peak memory
(VmHWM) stays under 150 MB whatever was posted.

Before: the 300 MB body was read whole before the token or signature was checked (104 → 788 MB).

The web review's findings, same server: idle sockets shut nobody out and are closed at the head
deadline; a slow body is answered 408 at the body deadline, freeing what it held; a body nobody
reads is not drained (the client keeps sending, as an attacker would, and the server hangs up).
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
from tests.support.web_client import SigningKey

MB = 1024 * 1024
ATTACK_BYTES = 300 * MB
MEMORY_CEILING_KB = 150 * 1024
PARSE_SECRET = "parse-secret-for-bodies"
# The module's server gives a client this long for a request head, then for its body.
HEAD_TIMEOUT = 1
BODY_TIMEOUT = 2


@dataclass
class Served:
    port: int
    process: subprocess.Popen
    log: Path
    signing: SigningKey

    def peak_rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc status")


def start_serve(project: Path, env: dict[str, str], signing: SigningKey) -> Served:
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
                return Served(port, process, project / "serve.log", signing)
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "syndicate serve did not come up"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the module: only strangers post to it, so its peak memory is theirs."""
    project = copy_project(tmp_path_factory.mktemp("bodies"))
    config = project / "settings.toml"
    set_setting(config, "max_requests = 100", "max_requests = 20")
    set_setting(config, "head_timeout_seconds = 10", f"head_timeout_seconds = {HEAD_TIMEOUT}")
    set_setting(config, "body_timeout_seconds = 10", f"body_timeout_seconds = {BODY_TIMEOUT}")
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
    server = start_serve(project, env, signing)
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)


@dataclass
class Outcome:
    status: int | None  # None: the server hung up without a readable answer
    sent: int  # body bytes written before the server hung up (or the client gave up)
    closed: bool  # the server closed the connection while the client was still sending


def filler() -> Iterator[bytes]:
    while True:
        yield b"x" * (64 * 1024)


def post_chunked(
    port: int,
    path: str,
    headers: dict[str, str],
    total: int = ATTACK_BYTES,
    pieces: Iterable[bytes] | None = None,
    method: str = "POST",
) -> Outcome:
    """Streams up to `total` bytes as a chunked request, reading the answer as soon as it comes
    and sending on after it, as an attacker would, until the server closes the connection."""
    source = iter(pieces if pieces is not None else filler())
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
    answer, closed = b"", False
    try:
        sock.sendall(head.encode())
        sent, pending = 0, b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not closed:
            readable, writable, _ = select.select([sock], [sock], [], 5)
            if readable:
                try:
                    more = sock.recv(65536)
                except ConnectionResetError:
                    more = b""
                answer += more
                closed = not more
                continue
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
                closed = True
        return Outcome(_status_line(answer) or _status(sock), sent, closed)
    finally:
        sock.close()


def _status_line(data: bytes) -> int | None:
    first = data.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) >= 2 and first[1].isdigit() else None


def _status(sock: socket.socket) -> int | None:
    sock.settimeout(10)
    data = b""
    try:
        while b"\r\n" not in data:
            more = sock.recv(4096)
            if not more:
                break
            data += more
    except (ConnectionResetError, TimeoutError, OSError):
        pass
    return _status_line(data)


def basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"sendgrid:{password}".encode()).decode()


def test_huge_chunked_bodies_are_cut_off_and_memory_stays_bounded(served: Served) -> None:
    fresh = {
        "X-Twilio-Email-Event-Webhook-Timestamp": str(int(time.time())),
        "X-Twilio-Email-Event-Webhook-Signature": a_well_formed_wrong_signature(),
        "Content-Type": "application/json",
    }
    # (path, headers, limit, the answers that refuse it)
    attacks = {
        "unsubscribe, urlencoded": (
            "/unsubscribe/u1-1-aaaaaaaaaaaaaaaa",
            {"Content-Type": "application/x-www-form-urlencoded"},
            64 * 1024,
            {413},
        ),
        # Not multipart at all: 400 from the parser when its first read is under the limit,
        # else 413. Either way the rest is not read.
        "unsubscribe, multipart": (
            "/unsubscribe/u1-1-aaaaaaaaaaaaaaaa",
            {"Content-Type": "multipart/form-data; boundary=b"},
            64 * 1024,
            {400, 413},
        ),
        "subscribe form": (
            "/subscribe",
            {"Content-Type": "application/x-www-form-urlencoded"},
            64 * 1024,
            {413},
        ),
        # Confirming reads no body at all: the forged token is refused at once.
        "confirm": ("/confirm/anything", {}, 0, {400}),
        "event webhook, fresh timestamp, forged signature": (
            "/webhooks/sendgrid/events",
            fresh,
            5_000_000,
            {413},
        ),
    }
    for name, (path, headers, limit, refusals) in attacks.items():
        outcome = post_chunked(served.port, path, headers)
        assert outcome.status in refusals, f"{name}: answered {outcome.status}"
        # Cut off near the limit (plus what the socket buffers held), never read whole.
        assert outcome.closed, f"{name}: the server kept reading"
        assert outcome.sent < limit + 8 * MB, f"{name}: {outcome.sent} bytes accepted"

    # A stranger posting to Inbound Parse is refused before any of the body is read.
    for authorization in ({}, {"Authorization": basic("wrong")}, {"Authorization": "Bearer x"}):
        headers = {"Content-Type": "multipart/form-data; boundary=b", **authorization}
        outcome = post_chunked(served.port, "/webhooks/sendgrid/inbound", headers)
        assert outcome.status == 401 and outcome.closed and outcome.sent < 8 * MB, outcome

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
    assert outcome.status == 413 and outcome.closed, outcome
    assert 30 * MB < outcome.sent < 40 * MB, outcome


def slow_event_post(port: int, signature: str) -> socket.socket:
    """A connection that posts an event body's first byte with a fresh timestamp, then waits."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        (
            "POST /webhooks/sendgrid/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
            f"X-Twilio-Email-Event-Webhook-Timestamp: {int(time.time())}\r\n"
            f"X-Twilio-Email-Event-Webhook-Signature: {signature}\r\n\r\n1\r\n[\r\n"
        ).encode()
    )
    return sock


def post_events(served: Served, body: bytes, headers: dict[str, str]) -> httpx.Response:
    url = f"http://127.0.0.1:{served.port}/webhooks/sendgrid/events"
    return httpx.post(url, content=body, headers=headers, timeout=10)


def genuine_post(served: Served) -> httpx.Response:
    body = b"[]"
    return post_events(served, body, served.signing.headers(body))


def a_well_formed_wrong_signature() -> str:
    """A real ECDSA signature, by a key that is not SendGrid's: it can only fail once read."""
    return SigningKey().headers(b"[]")["X-Twilio-Email-Event-Webhook-Signature"]


def test_at_most_four_event_bodies_are_read_at_once_and_only_until_the_deadline(
    served: Served,
) -> None:
    """Unsigned bodies are read before the signature can be checked: a fifth concurrent one is
    turned away at once (503, which SendGrid retries) instead of adding up in memory, and the
    four are cut off (408) at web.body_timeout_seconds, after which SendGrid's post gets in.

    Before: the four held their slots for as long as they kept the connection open."""
    forged = a_well_formed_wrong_signature()
    slow = [slow_event_post(served.port, forged) for _ in range(4)]
    try:
        time.sleep(0.5)  # the four handlers are now waiting for the rest of their bodies
        assert genuine_post(served).status_code == 503
        # Each of the four is answered 408 and hung up on at the deadline.
        for sock in slow:
            assert _status(sock) == 408
            assert sock.recv(65536) == b"" or sock.recv(65536) == b""
        assert genuine_post(served).status_code == 200
    finally:
        for sock in slow:
            sock.close()
    assert "Traceback" not in served.log.read_text()


def test_a_malformed_signature_is_refused_before_a_slot_is_taken(served: Served) -> None:
    """Junk in the signature header (the review's `Zm9v`) is refused (401) before any of the body
    is read, so four of them hold nothing: SendGrid's own post is accepted meanwhile."""
    slow = [slow_event_post(served.port, "Zm9v") for _ in range(4)]
    try:
        for sock in slow:
            assert _status(sock) == 401
        assert genuine_post(served).status_code == 200
    finally:
        for sock in slow:
            sock.close()


def test_slow_clients_past_max_requests_are_turned_away_until_the_deadline(
    served: Served,
) -> None:
    """25 clients that send headers and a trickle of body: past web.max_requests (20 here) the
    server answers 503 at once instead of holding them all, and at web.body_timeout_seconds the
    20 are answered 408 and hung up on, so a good request gets in again.

    Before: the 20 held their connections for as long as they kept them open."""
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
        time.sleep(0.5)
        answered = [sock for sock in slow if select.select([sock], [], [], 0)[0]]
        statuses = [_status(sock) for sock in answered]
        assert statuses and set(statuses) == {503}, statuses
        assert 5 <= len(statuses) <= 10, statuses
        held = [sock for sock in slow if sock not in answered]
        assert {_status(sock) for sock in held} == {408}
        assert httpx.get(f"http://127.0.0.1:{served.port}/healthz").status_code == 200
    finally:
        for sock in slow:
            sock.close()


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes `sock` within `within` seconds (any answer is read past)."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_idle_connections_shut_nobody_out_and_are_closed(served: Served) -> None:
    """150 sockets that never send a byte (far past web.max_requests): a visitor is still
    served at once, and each idle socket is closed at web.head_timeout_seconds, as is one that
    sends its request head a byte at a time.

    Before: uvicorn's limit_concurrency counted them, and every request got 503 until the
    attacker let go; nothing ever closed them."""
    idle = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(150)]
    trickle = socket.create_connection(("127.0.0.1", served.port))
    try:
        time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{served.port}/subscribe").status_code == 200
        started = time.monotonic()
        for byte in b"GET /subscribe HTTP/1.1\r\n":
            try:
                trickle.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
        assert closed_by_server(trickle, 1)
        assert time.monotonic() - started < HEAD_TIMEOUT + 2
        assert all(closed_by_server(sock, HEAD_TIMEOUT + 1) for sock in idle)
        # After an answer on a kept-alive connection, the next head has the same deadline.
        kept = socket.create_connection(("127.0.0.1", served.port), timeout=10)
        idle.append(kept)
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _status(kept) == 200
        started = time.monotonic()
        for byte in b"GET /healthz HTTP/1.1\r\n":
            try:
                kept.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
        assert closed_by_server(kept, 1)
        assert time.monotonic() - started < HEAD_TIMEOUT + 2
    finally:
        trickle.close()
        for sock in idle:
            sock.close()


def test_a_body_nothing_reads_is_not_drained(served: Served) -> None:
    """300 MB chunked to routes that never read a body (a GET page, a wrong method, an unknown
    path): the answer says `Connection: close` and the server stops reading at once.

    Before: uvicorn read and threw away all 300 MB of each."""
    for method, path, expected in (
        ("GET", "/healthz", 200),
        ("GET", "/subscribe", 200),
        ("POST", "/healthz", 405),
        ("POST", "/nowhere", 404),
    ):
        outcome = post_chunked(served.port, path, {}, method=method)
        assert outcome.status == expected, (method, path, outcome)
        assert outcome.closed and outcome.sent < 8 * MB, (method, path, outcome)
    assert served.peak_rss_kb() < MEMORY_CEILING_KB


def test_a_keep_alive_request_with_its_body_read_keeps_its_connection(served: Served) -> None:
    """Only an unread body closes the connection: a normal post is answered and kept alive."""
    with httpx.Client() as client:
        url = f"http://127.0.0.1:{served.port}/unsubscribe/u1-1-aaaaaaaaaaaaaaaa"
        first = client.post(url, data={"List-Unsubscribe": "One-Click"})
        assert first.status_code == 400 and "close" not in first.headers.get("connection", "")
        assert client.get(f"http://127.0.0.1:{served.port}/healthz").status_code == 200
