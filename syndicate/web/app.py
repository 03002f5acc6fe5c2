"""The small web app behind `syndicate serve`: subscribe, confirm, one-click unsubscribe, webhooks.

Routes (relative to `mail.base_url`):

- `GET /` and `GET /subscribe`: the form (CSRF token, honeypot); `POST /subscribe` records a
  pending opt-in and emails a signed, expiring confirmation link. The answer is the same whether
  or not the address is known; a per-IP limit stops floods.
- `GET /confirm/TOKEN`: one button; `POST /confirm/TOKEN` activates the subscription (link
  scanners open links, they do not press buttons).
- `GET /unsubscribe/TOKEN`: one button; `POST /unsubscribe/TOKEN` with
  `List-Unsubscribe=One-Click` (RFC 8058, urlencoded or multipart) unsubscribes at once. A GET
  never unsubscribes.
- `POST /webhooks/sendgrid/events`: SendGrid's signed Event Webhook (fresh timestamps only).

Inbound mail (SendGrid Inbound Parse, basic auth) is mounted from
syndicate.inbound.sources.sendgrid.
Every body is bounded while it streams and every response carries the security headers
(syndicate.web.guard).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from itsdangerous import BadSignature
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from syndicate.audience import importers, optin, subscribers
from syndicate.headers import one_line
from syndicate.inbound.sources import sendgrid as sendgrid_inbound
from syndicate.models import RecipientKind
from syndicate.runtime import Runtime
from syndicate.web import webhooks
from syndicate.web.guard import (
    BodyLimit,
    BodyTooLarge,
    RateLimiter,
    RequestLimit,
    SecurityHeaders,
    client_address,
    limiter_key,
    page_csp,
)

log = logging.getLogger(__name__)

CSRF_COOKIE = "syndicate_csrf"
CSRF_SALT = "syndicate.csrf"
CSRF_MAX_AGE = 2 * 3600
HONEYPOT = "website"
ONE_CLICK = "List-Unsubscribe=One-Click"
EVENTS_PATH = "/webhooks/sendgrid/events"
# Event bodies are read before their signature can be checked: at most this many at once, so
# concurrent unsigned posts cannot add up (SendGrid retries a 503).
EVENT_READERS = 4


class WebApp:
    """The request handlers and what they share: the runtime (engine, key, templates,
    transports) and the rate limiter."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = settings = runtime.settings
        # Opened now, not by the first request: a broken database stops `serve` at start.
        self.engine = runtime.engine
        self.key = runtime.key
        self.env = runtime.templates
        self.limiter = RateLimiter(
            settings.web.rate_limit,
            settings.web.rate_window_seconds,
            settings.web.rate_limit_clients,
        )
        self.csrf = optin.serializer(self.key, CSRF_SALT)
        self.event_readers = asyncio.Semaphore(EVENT_READERS)

    # --- helpers --------------------------------------------------------------------------

    def page(self, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        context = {
            "site": self.settings.site,
            "author": self.settings.author,
            "csp_nonce": nonce,
            **values,
        }
        html = self.env.get_template(f"web/{template}").render(context)
        headers = {"Content-Security-Policy": page_csp(nonce), "Cache-Control": "no-store"}
        return HTMLResponse(html, status_code, headers=headers)

    def notice(self, title: str, message: str, status_code: int = 200, **extra: Any) -> Response:
        return self.page(
            "notice.html.j2", status_code, title=title, message=message, link=extra.get("link")
        )

    def client_ip(self, request: Request) -> str:
        peer = request.client.host if request.client else "unknown"
        forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
        return client_address(peer, forwarded, self.settings.web.trusted_proxies)

    def subscribe_form(
        self, request: Request, status_code: int = 200, error: str = "", **values: Any
    ) -> Response:
        nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(16)
        response = self.page(
            "subscribe.html.j2",
            status_code,
            csrf=self.csrf.dumps(nonce),
            honeypot=HONEYPOT,
            error=error,
            email=values.get("email", ""),
            name=values.get("name", ""),
        )
        response.set_cookie(
            CSRF_COOKIE,
            nonce,
            max_age=CSRF_MAX_AGE,
            httponly=True,
            samesite="strict",
            secure=self.settings.mail.base_url.startswith("https://"),
        )
        return response

    def csrf_ok(self, request: Request, token: str) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        try:
            nonce = self.csrf.loads(token, max_age=CSRF_MAX_AGE)
        except BadSignature:
            return False
        return bool(cookie) and isinstance(nonce, str) and hmac.compare_digest(nonce, cookie)

    # --- routes ---------------------------------------------------------------------------

    async def get_subscribe(self, request: Request) -> Response:
        return self.subscribe_form(request)

    async def post_subscribe(self, request: Request) -> Response:
        allowed, retry = self.limiter.allow(limiter_key(self.client_ip(request)))
        if not allowed:
            log.warning("subscribe rate limit hit by %s", self.client_ip(request))
            response = self.notice(
                "Too many requests",
                "Too many sign-up attempts from your network. Please try again in a few minutes.",
                429,
            )
            response.headers["Retry-After"] = str(retry)
            return response
        form = await request.form(max_files=0, max_fields=20)
        email = str(form.get("email", "")).strip()
        name = one_line(str(form.get("name", "")))[:200]  # no NUL: PostgreSQL refuses it
        if not self.csrf_ok(request, str(form.get("csrf", ""))):
            log.warning("subscribe refused: missing or wrong CSRF token from %s", request.client)
            return self.subscribe_form(
                request,
                403,
                "This form had expired or did not come from this site. Please submit it again.",
                email=email,
                name=name,
            )
        if str(form.get(HONEYPOT, "")).strip():
            log.info("subscribe honeypot filled by %s; ignored", self.client_ip(request))
            return self.check_inbox()
        address, why = importers.check_address(email)
        if address is None:
            return self.subscribe_form(
                request,
                400,
                f"That does not look like an email address: {why}",
                email=email,
                name=name,
            )
        pending = await run_in_threadpool(
            optin.request,
            self.engine,
            RecipientKind.READER,
            address,
            name,
            self.settings.web.confirm_hours,
        )
        sent = await run_in_threadpool(
            optin.send_confirmation,
            self.settings,
            self.env,
            self.runtime.transport(),
            self.key,
            pending,
            RecipientKind.READER,
            address,
            name,
        )
        if not sent:
            return self.notice(
                "Please try again later",
                "We could not send the confirmation email just now. Nothing was changed; "
                "please try again in a little while.",
                503,
            )
        return self.check_inbox()

    def check_inbox(self) -> Response:
        hours = self.settings.web.confirm_hours
        return self.notice(
            "Check your inbox",
            "If that address can receive our newsletter, a message with a confirmation link is "
            f"on its way. Click the link within {hours:g} hours to start receiving "
            f"{self.settings.site.name}.",
        )

    async def get_confirm(self, request: Request) -> Response:
        """Shows the button only: opening the link (a mail scanner does) changes nothing."""
        token = request.path_params["token"]
        max_age = self.settings.web.confirm_hours * 3600
        outcome = await run_in_threadpool(optin.check, self.engine, self.key, token, max_age)
        if outcome.state == "pending":
            return self.page("confirm.html.j2", email=outcome.email)
        return self.confirm_outcome(outcome)

    async def post_confirm(self, request: Request) -> Response:
        token = request.path_params["token"]
        max_age = self.settings.web.confirm_hours * 3600
        outcome = await run_in_threadpool(optin.confirm, self.engine, self.key, token, max_age)
        return self.confirm_outcome(outcome)

    def confirm_outcome(self, outcome: optin.ConfirmOutcome) -> Response:
        if outcome.state == "confirmed":
            return self.notice(
                "You’re subscribed",
                f"Thank you. {outcome.email} will receive {self.settings.site.name} from the "
                "next edition on.",
            )
        if outcome.state == "already":
            return self.notice(
                "Already confirmed", "This subscription was already confirmed; nothing to do."
            )
        if outcome.state == "expired":
            return self.notice(
                "This link has expired",
                "Confirmation links work for a limited time. Please subscribe again to get a "
                "new one.",
                410,
                link=True,
            )
        return self.notice(
            "This link is not valid",
            "This confirmation link is not one we sent, or it was changed on the way. "
            "Nothing was changed. Please subscribe again.",
            400,
            link=True,
        )

    def forged_unsubscribe(self) -> Response:
        return self.notice(
            "This unsubscribe link is not valid",
            "This link is not one we sent, or it was changed on the way, so nothing was "
            "changed. Use the unsubscribe link at the bottom of any newsletter, or reply to it "
            "with the word 'unsubscribe'.",
            400,
        )

    async def get_unsubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        outcome = await run_in_threadpool(
            subscribers.check_unsubscribe_token, self.engine, self.key, token
        )
        if not outcome.ok:
            return self.forged_unsubscribe()
        if outcome.status != "active":
            return self.notice(
                "You’re already unsubscribed",
                f"{outcome.email} receives no emails from {self.settings.site.name}. "
                "To read it again, subscribe again.",
                link=True,
            )
        return self.page("unsubscribe.html.j2", email=outcome.email)

    async def post_unsubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        if not await self.one_click_requested(request):
            return self.notice(
                "Nothing was changed",
                f"An unsubscribe request must carry '{ONE_CLICK}'. Please use the button on "
                "the unsubscribe page.",
                400,
            )
        outcome = await run_in_threadpool(
            subscribers.unsubscribe_with_token, self.engine, self.key, token, "one-click"
        )
        if not outcome.ok:
            return self.forged_unsubscribe()
        return self.notice(
            "You’re unsubscribed",
            f"{outcome.email} will receive no more emails from {self.settings.site.name}. "
            "Changed your mind? You can subscribe again at any time.",
            link=True,
        )

    async def one_click_requested(self, request: Request) -> bool:
        """RFC 8058's `List-Unsubscribe=One-Click`, sent urlencoded or as multipart/form-data."""
        content_type = request.headers.get("content-type", "").lower()
        if content_type.startswith("multipart/form-data"):
            try:
                form = await request.form(max_files=0, max_fields=10, max_part_size=1024)
            except BodyTooLarge:
                raise
            except HTTPException:  # malformed multipart: no request to unsubscribe
                return False
            return form.get("List-Unsubscribe") == "One-Click"
        # Any other type is read as urlencoded: some providers send no Content-Type at all.
        body = (await request.body()).decode("utf-8", errors="replace")
        return ("List-Unsubscribe", "One-Click") in parse_qsl(body, keep_blank_values=True)

    async def sendgrid_events(self, request: Request) -> Response:
        public_key = os.environ.get(self.settings.web.sendgrid_webhook_key_env, "")
        if not public_key:
            log.error(
                "SendGrid event webhook called but $%s is not set; answering 503 so SendGrid "
                "retries later",
                self.settings.web.sendgrid_webhook_key_env,
            )
            return JSONResponse({"error": "webhook verification key not configured"}, 503)
        signature = request.headers.get(webhooks.SIGNATURE_HEADER, "")
        timestamp = request.headers.get(webhooks.TIMESTAMP_HEADER, "")
        if not webhooks.fresh(timestamp, time.time()):
            log.warning("SendGrid event webhook: stale timestamp from %s", request.client)
            return JSONResponse({"error": "missing, stale or bad signature"}, 401)
        if not signature_well_formed(signature):
            log.warning("SendGrid event webhook: malformed signature from %s", request.client)
            return JSONResponse({"error": "missing, stale or bad signature"}, 401)
        if self.event_readers.locked():
            return JSONResponse({"error": "busy, retry later"}, 503)
        async with self.event_readers:
            body = await request.body()
        if not webhooks.verify(public_key, body, signature, timestamp):
            log.warning("SendGrid event webhook: missing or bad signature from %s", request.client)
            return JSONResponse({"error": "missing, stale or bad signature"}, 401)
        try:
            events = webhooks.parse_events(body)
        except ValueError as exc:
            return JSONResponse({"error": f"body is not an event array: {exc}"}, 400)
        report = await run_in_threadpool(webhooks.apply_events, self.engine, events)
        return JSONResponse(report.as_dict())

    async def to_subscribe(self, request: Request) -> Response:
        """The one redirect: to the configured public address, never one built from Host."""
        return RedirectResponse(f"{self.settings.mail.base_url}/subscribe", 308)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.get_subscribe, methods=["GET"]),
            Route("/subscribe", self.get_subscribe, methods=["GET"]),
            Route("/subscribe", self.post_subscribe, methods=["POST"]),
            Route("/subscribe/", self.to_subscribe, methods=["GET"]),
            Route("/confirm/{token}", self.get_confirm, methods=["GET"]),
            Route("/confirm/{token}", self.post_confirm, methods=["POST"]),
            Route("/unsubscribe/{token}", self.get_unsubscribe, methods=["GET"]),
            Route("/unsubscribe/{token}", self.post_unsubscribe, methods=["POST"]),
            Route(EVENTS_PATH, self.sendgrid_events, methods=["POST"]),
            Route("/healthz", self.health, methods=["GET"]),
        ]


def signature_well_formed(signature: str) -> bool:
    """Whether the header can be an ECDSA signature at all (base64 DER), decided before the body
    is read, so a stranger's junk never holds one of the EVENT_READERS slots."""
    try:
        decode_dss_signature(base64.b64decode(signature))
    except (ValueError, TypeError, binascii.Error):
        return False
    return True


class GuardedStarlette(Starlette):
    """Starlette with our guards outside its ServerErrorMiddleware, so a 500 also carries the
    security headers, counts toward the request limit and closes an unread body."""

    def __init__(self, *args: Any, guard: Callable[[ASGIApp], ASGIApp], **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(*args, **kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return self.guard(super().build_middleware_stack())


async def client_gone(request: Request, exc: Exception) -> Response:
    """A client that hung up in the middle of its body: one log line, nothing changed."""
    log.warning("client disconnected mid-body: %s %s", request.method, request.url.path)
    return Response(status_code=400)


def create_app(runtime: Runtime, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The ASGI app: our pages, SendGrid's event and inbound-mail webhooks, then `extra_routes`.

    Every route shares `runtime` (one engine, one key, one Jinja environment), kept as
    `app.state.runtime`."""
    from syndicate import desk

    settings = runtime.settings
    web = WebApp(runtime)
    inbound_routes = sendgrid_inbound.routes(runtime)
    inbound_limit = sendgrid_inbound.max_post_bytes(settings)

    def body_limit(path: str) -> int:
        if path == settings.desk.path + desk.UPLOAD_PATH:
            return settings.desk.max_upload_bytes
        if path == EVENTS_PATH:
            return settings.web.max_event_bytes
        if path == sendgrid_inbound.PATH:
            return inbound_limit
        return settings.web.max_body_bytes

    def guard(app: ASGIApp) -> ASGIApp:
        bounded = BodyLimit(app, body_limit, settings.web.body_timeout_seconds)
        return SecurityHeaders(RequestLimit(bounded, settings.web.max_requests))

    desk_routes = desk.routes(runtime)
    app = GuardedStarlette(
        routes=[*web.routes(), *inbound_routes, *desk_routes, *extra_routes],
        exception_handlers={ClientDisconnect: client_gone},
        guard=guard,
    )
    # Starlette's own trailing-slash redirect builds its Location from the Host header.
    app.router.redirect_slashes = False
    app.state.web = web
    app.state.runtime = runtime
    return app
