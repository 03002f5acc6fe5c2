"""The desk's shared parts: what every page needs (database, key, templates, the author's session)
and the gate every route passes through.

The gate, in order: no password set → the page saying how to set one (and nothing else); a POST
from another origin → 403 before its body is read; no session → to the login page; a POST whose
CSRF token (form field or X-CSRF-Token header) is not this session's → 403.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles

from syndicate.desk import auth, queries
from syndicate.runtime import Runtime
from syndicate.web.guard import RateLimiter, client_address

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
# Desk pages load their stylesheet and htmx from the desk itself, talk back only to it and frame
# only its own previews (served with a policy of their own, see posts.py).
DESK_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
# At most this many argon2 checks at once (each takes 64 MiB for a moment).
PASSWORD_CHECKS = 2
MAX_FORM_FIELDS = 40

Handler = Callable[["Desk", Request, auth.Session], Awaitable[Response]]


def escaped_template(env: jinja2.Environment, name: str) -> jinja2.Template:
    """A desk page from the runtime's one environment, which autoescapes by file name: every
    desk page is `.html.j2`, and one that would not be escaped is refused, never rendered."""
    autoescape = env.autoescape
    if not (autoescape(name) if callable(autoescape) else autoescape):
        raise RuntimeError(f"{name}: a desk page must be a .html.j2 template (autoescaped)")
    return env.get_template(name)


class Desk:
    """What the desk's handlers share."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = settings = runtime.settings
        self.engine = runtime.engine
        self.key = runtime.key
        self.path = settings.desk.path
        # Where the browser sees the desk: behind a proxy that serves the app under
        # mail.base_url's path, links and cookies carry that path too.
        public_base = "" if settings.desk.origin else urlsplit(settings.mail.base_url).path
        self.public = public_base.rstrip("/") + self.path
        self.env = runtime.templates
        self.sessions = auth.Sessions(self.key, int(settings.desk.session_hours * 3600))
        self.origin = auth.origin_of(settings.desk.origin or settings.mail.base_url)
        self.secure = self.origin.startswith("https://")
        from syndicate.desk.login import ACCOUNT_FAILURES, AccountLockout

        self.login_limiter = RateLimiter(
            settings.desk.login_attempts, settings.desk.login_window_seconds
        )
        self.account_lockout = AccountLockout(
            runtime, ACCOUNT_FAILURES, settings.desk.login_window_seconds
        )
        self.devices = auth.Devices(self.key, int(settings.desk.known_device_days * 86400))
        self.password_checks = asyncio.Semaphore(PASSWORD_CHECKS)

    # --- answers ----------------------------------------------------------------------------

    def url(self, path: str = "") -> str:
        """The address the browser uses for a desk path ("" → the home page)."""
        return f"{self.public}{path}" if path else f"{self.public}/"

    def page(
        self,
        template: str,
        session: auth.Session | None = None,
        status_code: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        context = {
            "site": self.settings.site,
            "author": self.settings.author,
            "desk": self.public,
            "csrf": session.csrf if session else "",
            "section": "",
            "narrow": False,
            **values,
        }
        html = escaped_template(self.env, f"desk/{template}").render(context)
        headers = {
            "Content-Security-Policy": DESK_CSP,
            "Cache-Control": "no-store",
            # The app's no-referrer makes Chromium send "Origin: null" with a form, which the
            # same-origin rule refuses; same-origin sends nothing to other sites either.
            "Referrer-Policy": "same-origin",
        }
        return HTMLResponse(html, status_code, headers=headers)

    def redirect(self, path: str = "") -> RedirectResponse:
        return RedirectResponse(self.url(path), 303)

    def to_login(self, request: Request) -> Response:
        inside = request.url.path[len(self.path) :] if request.method == "GET" else ""
        wanted = self.url(inside) if inside not in ("", "/") else self.url()
        if request.headers.get("hx-request") == "true":
            # htmx polling a fragment after the session ended: the whole page goes to the login
            # (a 303 would put the login page inside the fragment).
            return Response(status_code=204, headers={"HX-Redirect": self.url("/login")})
        return RedirectResponse(f"{self.url('/login')}?next={quote(wanted, safe='/')}", 303)

    def forbidden(self, why: str) -> Response:
        return self.page("refused.html.j2", None, 403, title="Refused", message=why)

    def client_ip(self, request: Request) -> str:
        peer = request.client.host if request.client else "unknown"
        forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
        return client_address(peer, forwarded, self.settings.web.trusted_proxies)

    def set_session_cookie(self, response: Response, value: str) -> None:
        self.set_cookie(response, auth.SESSION_COOKIE, value, self.sessions.max_age)

    def set_device_cookie(self, response: Response, value: str) -> None:
        self.set_cookie(response, auth.DEVICE_COOKIE, value, self.devices.max_age)

    def set_cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=self.public,
            httponly=True,
            samesite="strict",
            secure=self.secure,
        )

    # --- the gate ---------------------------------------------------------------------------

    async def session_of(self, request: Request) -> auth.Session | None:
        epoch = await run_in_threadpool(queries.session_epoch, self.engine)
        return self.sessions.read(request.cookies.get(auth.SESSION_COOKIE), epoch)

    async def form(self, request: Request) -> FormData:
        return await request.form(
            max_files=1, max_fields=MAX_FORM_FIELDS, max_part_size=self.settings.web.max_body_bytes
        )

    async def password_set(self) -> bool:
        return await run_in_threadpool(queries.password_hash, self.engine) is not None

    def setup_page(self) -> Response:
        return self.page("setup.html.j2", None, 200, title="Set a password first")

    def guarded(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not await self.password_set():
                return self.setup_page()
            posting = request.method not in ("GET", "HEAD")
            if posting and not auth.same_origin(request, self.origin):
                log.warning("desk: %s %s refused: foreign origin", request.method, request.url.path)
                return self.forbidden("This form was not sent from the desk.")
            session = await self.session_of(request)
            if session is None:
                return self.to_login(request)
            if posting:
                given = request.headers.get(auth.CSRF_HEADER, "")
                if not given:
                    given = str((await self.form(request)).get(auth.CSRF_FIELD, ""))
                if not auth.csrf_ok(session, given):
                    log.warning("desk: %s %s refused: bad CSRF", request.method, request.url.path)
                    return self.forbidden("This form had expired. Go back, reload, try again.")
            return await handler(self, request, session)

        return endpoint


def build_router(desk: Desk, routes: Sequence[tuple[str, Handler, str]]) -> Router:
    """The login pages, the static files, then every guarded route given."""
    from syndicate.desk import login

    own: list[BaseRoute] = [
        *login.routes(desk),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    own += [
        Route(path, desk.guarded(handler), methods=[method]) for path, handler, method in routes
    ]
    return Router(routes=own, redirect_slashes=False)


def nonce() -> str:
    return secrets.token_urlsafe(16)
