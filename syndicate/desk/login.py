"""Logging in and out of the desk.

The login form carries its own CSRF token (bound to a nonce cookie), so no other site can log
the author's browser into a session of its choosing; attempts are limited per client address.
"""

from __future__ import annotations

import logging
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from syndicate.desk import auth, queries
from syndicate.desk.app import Desk
from syndicate.web.guard import limiter_key

log = logging.getLogger(__name__)


def _safe_next(desk: Desk, wanted: str) -> str:
    """Only a path inside the desk: never another host (`//evil`, `/\\evil`) after login."""
    if wanted.startswith(desk.public + "/") and "//" not in wanted and "\\" not in wanted:
        return wanted
    return desk.url()


def routes(desk: Desk) -> list[BaseRoute]:
    def login_page(
        request: Request, status_code: int = 200, error: str = "", wanted: str = ""
    ) -> Response:
        nonce = request.cookies.get(auth.LOGIN_COOKIE) or secrets.token_urlsafe(16)
        response = desk.page(
            "login.html.j2",
            None,
            status_code,
            title="Log in",
            login_token=desk.sessions.login_token(nonce),
            error=error,
            next=_safe_next(desk, wanted or request.query_params.get("next", "")),
        )
        response.set_cookie(
            auth.LOGIN_COOKIE,
            nonce,
            max_age=auth.LOGIN_MAX_AGE,
            path=desk.public,
            httponly=True,
            samesite="strict",
            secure=desk.secure,
        )
        return response

    async def get_login(request: Request) -> Response:
        if not await desk.password_set():
            return desk.setup_page()
        if await desk.session_of(request) is not None:
            return desk.redirect()
        return login_page(request)

    async def post_login(request: Request) -> Response:
        if not await desk.password_set():
            return desk.setup_page()
        if not auth.same_origin(request, desk.origin):
            return desk.forbidden("This form was not sent from the desk.")
        form = await desk.form(request)
        wanted = str(form.get("next", ""))
        nonce = request.cookies.get(auth.LOGIN_COOKIE)
        if not desk.sessions.login_token_ok(str(form.get(auth.CSRF_FIELD, "")), nonce):
            return login_page(request, 403, "This form had expired. Please try again.", wanted)
        client = desk.client_ip(request)
        allowed, retry = desk.login_limiter.allow(limiter_key(client))
        if not allowed:
            log.warning("desk: login attempts from %s over the limit", client)
            response = login_page(
                request, 429, f"Too many attempts. Try again in {retry // 60 + 1} minutes.", wanted
            )
            response.headers["Retry-After"] = str(retry)
            return response
        password = str(form.get("password", ""))
        stored = await run_in_threadpool(queries.password_hash, desk.engine)
        async with desk.password_checks:
            ok = stored is not None and await run_in_threadpool(
                auth.password_matches, stored, password
            )
        if not ok:
            log.warning("desk: wrong password from %s", client)
            return login_page(request, 401, "That password is not right.", wanted)
        epoch = await run_in_threadpool(queries.session_epoch, desk.engine)
        if epoch is None:
            await run_in_threadpool(queries.end_sessions, desk.engine)
            epoch = await run_in_threadpool(queries.session_epoch, desk.engine)
        log.info("desk: the author logged in from %s", client)
        response = desk.redirect()
        response.headers["location"] = _safe_next(desk, wanted)
        desk.set_session_cookie(response, desk.sessions.issue(epoch or ""))
        response.delete_cookie(auth.LOGIN_COOKIE, path=desk.public)
        return response

    async def logout(desk_: Desk, request: Request, session: auth.Session) -> Response:
        await run_in_threadpool(queries.end_sessions, desk.engine)
        response = desk.page(
            "notice.html.j2",
            None,
            title="Logged out",
            message="You are logged out of the desk, on every device.",
        )
        response.delete_cookie(auth.SESSION_COOKIE, path=desk.public)
        return response

    return [
        Route("/login", get_login, methods=["GET"]),
        Route("/login", post_login, methods=["POST"]),
        Route("/logout", desk.guarded(logout), methods=["POST"]),
    ]
