"""Logging in and out of the desk.

The login form carries its own CSRF token (bound to a nonce cookie), so no other site can log
the author's browser into a session of its choosing; attempts are limited per client address,
and wrong passwords from every address together lock the one account for a while, except for a
browser the author logged in from before (a known device), so strangers cannot lock them out.
"""

from __future__ import annotations

import logging
import math
import secrets
from datetime import timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from syndicate import db
from syndicate.desk import auth, queries
from syndicate.desk.app import Desk
from syndicate.runtime import Runtime
from syndicate.web.guard import limiter_key

log = logging.getLogger(__name__)

# Wrong passwords, from all addresses together, that lock the account for a while: an attacker
# with many addresses (an IPv6 /48 is 65,536 of the per-address limiter's keys) gets this many
# guesses per lock, not 5 per address.
ACCOUNT_FAILURES = 20
# Each lock in a row lasts twice the one before, up to this many windows.
LONGEST_LOCK_WINDOWS = 16


class AccountLockout:
    """Wrong passwords for the one author account, whichever address they come from.

    After `failures` wrong passwords within `window` seconds the account refuses every attempt,
    from every address, for `window` seconds; each lock that follows another without a right
    password in between lasts twice as long (at most LONGEST_LOCK_WINDOWS windows). A right
    password while unlocked clears the count; `syndicate desk unlock` clears a lock. Kept in the
    database (db/login_lock.py), on the runtime's clock, so every `syndicate serve` process
    shares it and a restart forgets nothing. A browser the author logged in from before (a
    known device) is not held by it: see `Devices`.
    """

    def __init__(self, runtime: Runtime, failures: int, window: float) -> None:
        self.runtime, self.failures, self.window = runtime, failures, timedelta(seconds=window)

    def refused_for(self) -> int:
        """Seconds the account still refuses every attempt (0: it takes one)."""
        now = self.runtime.now()
        with self.runtime.engine.connect() as conn:
            until = db.login_lock.state(conn).refused_until(now)
        return _seconds(until - now) if until else 0

    def wrong(self) -> int:
        """Count a wrong password; the seconds of the lock it started (0: none)."""
        now = self.runtime.now()
        with self.runtime.engine.begin() as conn:
            until = db.login_lock.count_wrong(
                conn, now, self.failures, self.window, LONGEST_LOCK_WINDOWS
            )
        return _seconds(until - now) if until else 0

    def reserve(self) -> tuple[int, int]:
        """Before a password check: (seconds the account refuses it, 0: counted as wrong in
        advance; seconds of the lock this attempt started, 0: none)."""
        now = self.runtime.now()
        with self.runtime.engine.begin() as conn:
            refused = db.login_lock.reserve_check(
                conn, now, self.failures, self.window, LONGEST_LOCK_WINDOWS
            )
            if refused is not None:
                return _seconds(refused - now), 0
            started = db.login_lock.state(conn).refused_until(now)
        return 0, _seconds(started - now) if started else 0

    def right(self) -> None:
        with self.runtime.engine.begin() as conn:
            db.login_lock.clear(conn)


def _seconds(left: timedelta) -> int:
    return max(0, math.ceil(left.total_seconds()))


def _too_many(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"Too many attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."


def _safe_next(desk: Desk, wanted: str) -> str:
    """Only a path inside the desk: never another host (`//evil`, `/\\evil`) after login, and
    only printable ASCII without spaces: a Location header cannot carry anything else (a `€`
    made a 500, CR/LF made the server drop the connection)."""
    if (
        wanted.startswith(desk.public + "/")
        and "//" not in wanted
        and "\\" not in wanted
        and all("!" <= character <= "~" for character in wanted)
    ):
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
        desk.set_cookie(response, auth.LOGIN_COOKIE, nonce, auth.LOGIN_MAX_AGE)
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
        devices = await run_in_threadpool(queries.device_epoch, desk.engine)
        known = desk.devices.known(request.cookies.get(auth.DEVICE_COOKIE), devices)
        locked = await run_in_threadpool(desk.account_lockout.refused_for)
        holds = 0 if known else locked  # a known device is not held by the account's lock
        started = 0
        if allowed and not holds and not known:
            # Counted now, before waiting for a turn at the hash (guesses sent at once).
            holds, started = await run_in_threadpool(desk.account_lockout.reserve)
        if not allowed or holds:
            if holds:
                log.warning("desk: login from %s refused: the account is locked", client)
            else:
                log.warning("desk: login attempts from %s over the limit", client)
            retry = max(retry, holds)
            response = login_page(request, 429, _too_many(retry), wanted)
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
            lock = started if not known else await run_in_threadpool(desk.account_lockout.wrong)
            if lock:
                log.warning("desk: too many wrong passwords; the account is locked for %ss", lock)
            return login_page(request, 401, "That password is not right.", wanted)
        if not locked:  # the author, on a known device, past a stranger's lock: it stays
            await run_in_threadpool(desk.account_lockout.right)
        epoch = await run_in_threadpool(queries.session_epoch, desk.engine)
        if epoch is None:
            await run_in_threadpool(queries.end_sessions, desk.engine)
            epoch = await run_in_threadpool(queries.session_epoch, desk.engine)
        log.info(
            "desk: the author logged in from %s%s",
            client,
            " (a known device, past the account lock)" if locked else "",
        )
        response = desk.redirect()
        response.headers["location"] = _safe_next(desk, wanted)
        desk.set_session_cookie(response, desk.sessions.issue(epoch or ""))
        desk.set_device_cookie(response, desk.devices.issue(devices))
        response.delete_cookie(auth.LOGIN_COOKIE, path=desk.public)
        return response

    async def logout(desk_: Desk, request: Request, session: auth.Session) -> Response:
        # Every session ends, and every known device is forgotten: the next person at this
        # browser is a stranger to the account's lock.
        await run_in_threadpool(queries.end_sessions, desk.engine, forget_devices=True)
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
