"""What stands between the internet and the web app's handlers: bounded request bodies, security
headers on every response, the client's address behind proxies, and a bounded rate limiter."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"Request body larger than {limit} bytes.", headers={"Connection": "close"}
        )


class BodyLimit:
    """Refuses (413) a request whose body grows past its path's limit, counted while it streams.

    A declared Content-Length over the limit is refused before anything is read; a chunked body
    (no length) is cut off as soon as the bytes received pass the limit, wherever the handler
    reads it (`request.body()`, `.form()`, `.stream()`). The 413 closes the connection, so the
    rest is never read.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app, self.limit_for = app, limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(send, limit)
            return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, bounded_receive, send)


async def _refuse(send: Send, limit: int) -> None:
    body = f"Request body larger than {limit} bytes.".encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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
