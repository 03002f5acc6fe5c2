"""What stands between the internet and the web app's handlers: bounded request bodies, security
headers on every response, the client's address behind proxies, and a bounded rate limiter."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

# A page without its own policy (plain-text errors, JSON) may load and run nothing at all.
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # Tokens live in our URLs: a link followed from a page must not carry them away.
    "referrer-policy": "no-referrer",
}


def page_csp(style_nonce: str) -> str:
    """Our HTML pages: their one inline stylesheet, forms posting back to us, no scripts."""
    return (
        f"default-src 'none'; style-src 'nonce-{style_nonce}'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


CLOSE_HEADER = (b"connection", b"close")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"Request body larger than {limit} bytes.", headers={"Connection": "close"}
        )


class BodyTooSlow(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            f"Request body not received within {seconds:g} seconds.",
            headers={"Connection": "close"},
        )


class BodyLimit:
    """Refuses a request whose body grows past its path's limit (413) or is not all received
    within `timeout` seconds of its head (408), counted while it streams.

    A declared Content-Length over the limit is refused before anything is read; a chunked body
    (no length) is cut off as soon as the bytes received pass the limit, wherever the handler
    reads it (`request.body()`, `.form()`, `.stream()`). A response that starts before the body
    is all read (a 413, a 404, a page that never reads it) says `Connection: close`, so the
    server stops reading instead of draining the rest.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int], timeout: float) -> None:
        self.app, self.limit_for, self.timeout = app, limit_for, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(send, limit)
            return
        body_done = b"transfer-encoding" not in headers and declared in (None, b"0")
        received = 0
        deadline = asyncio.get_running_loop().time() + self.timeout

        async def bounded_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(remaining, 0))
            except TimeoutError:
                raise BodyTooSlow(self.timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        async def send_closing_if_unread(message: Message) -> None:
            if message["type"] == "http.response.start" and not body_done:
                headers = list(message.get("headers", []))
                if not any(
                    name.lower() == b"connection" and b"close" in value.lower()
                    for name, value in headers
                ):
                    message = {**message, "headers": [*headers, CLOSE_HEADER]}
            await send(message)

        await self.app(scope, bounded_receive, send_closing_if_unread)


async def _refuse(send: Send, limit: int) -> None:
    body = f"Request body larger than {limit} bytes.".encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestLimit:
    """At most `limit` requests handled at once; one past it gets 503 at once (closing its
    connection). Idle connections do not count: uvicorn's own `limit_concurrency` counts every
    open connection, so 100 sockets that never send a byte shut every client out."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit, self.active = app, limit, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            body = b"Server busy, please retry shortly."
            headers = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"5"),
                CLOSE_HEADER,
            ]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1


class SecurityHeaders:
    """Adds the security headers to every response; a page's own CSP is kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                wanted = {**SECURITY_HEADERS, "content-security-policy": STRICT_CSP}
                headers += [
                    (name.encode(), value.encode())
                    for name, value in wanted.items()
                    if name.encode() not in present
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def client_address(peer: str, forwarded_for: str, trusted_proxies: int) -> str:
    """The client as our own proxies saw it: the X-Forwarded-For entry `trusted_proxies` hops
    from the right. Entries further left were written by the client and are ignored; with fewer
    entries than proxies the one our nearest proxy wrote counts."""
    if trusted_proxies <= 0:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    if not hops:
        return peer
    return hops[-min(trusted_proxies, len(hops))]


def limiter_key(address: str) -> str:
    """One key per IPv4 address, one per IPv6 /64 (what one household or server is given)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class RateLimiter:
    """At most `limit` events per `window` seconds per key, for at most `max_keys` keys.

    Keys are kept least recently seen first: each request forgets the clients idle for a whole
    window from the front and, past `max_keys`, the least recently seen one, so the work per
    request is O(1) amortised and memory is bounded. One `syndicate serve` process is the whole
    web app, so memory is the right place; a restart forgets, which only lets a few more through.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window, self.max_keys, self.clock = limit, window, max_keys, clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._hits)

    def allow(self, key: str) -> tuple[bool, int]:
        """(allowed, seconds until the next request would be allowed)."""
        now = self.clock()
        with self._lock:
            self._forget_idle(now)
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque(maxlen=self.limit)
                if len(self._hits) > self.max_keys:
                    self._hits.popitem(last=False)
            else:
                self._hits.move_to_end(key)
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False, int(hits[0] + self.window - now) + 1
            hits.append(now)
            return True, 0

    def _forget_idle(self, now: float) -> None:
        while self._hits:
            oldest = next(iter(self._hits.values()))
            if oldest and oldest[-1] > now - self.window:
                return
            self._hits.popitem(last=False)


def h11_with_head_timeout(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol plus what it lacks (measured: a socket that never sends a byte
    stays open for ever): a client must send a whole request head within `seconds` of
    connecting or of its previous response, else its connection is closed. uvicorn's
    `timeout_keep_alive` is cancelled by any byte, so it cannot stop a head sent a byte at a time.
    """

    class H11WithHeadTimeout(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._await_head()

        def on_response_complete(self) -> None:
            self._await_head()  # before a pipelined request starts a new cycle
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def _await_head(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            answered = self.cycle
            self._head_timer = self.loop.call_later(seconds, self._head_overdue, answered)

        def _head_overdue(self, answered: object) -> None:
            if self.cycle is answered and not self.transport.is_closing():
                self.transport.close()

    return H11WithHeadTimeout
