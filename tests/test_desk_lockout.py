"""Strangers guessing the desk's password lock the account, but not its author out: a browser
that logged in before carries a signed "known device" cookie that lets it past the account-wide
lock (still limited per address, still needing the password); the lock lives in the database,
shared by every `syndicate serve`; `syndicate desk unlock` clears it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from starlette.applications import Starlette

from syndicate import db
from syndicate.desk import auth, queries
from syndicate.desk.login import ACCOUNT_FAILURES
from syndicate.runtime import Runtime
from syndicate.web.app import create_app
from tests.support.cli import run_cli
from tests.support.desk import (
    ORIGIN,
    PASSWORD,
    TestClient,
    attempt,
    desk_at_origin,
    engine_of,
    set_password,
)
from tests.support.scheduling import Clock
from tests.support.web_client import load_settings


@pytest.fixture
def desk_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return desk_at_origin(project, monkeypatch)


@pytest.fixture
def clock() -> Clock:
    # Real time: `desk unlock` runs the command's own Runtime, on the real clock.
    return Clock(datetime.now(UTC).replace(microsecond=0))


def app_for(project: Path, clock: Clock) -> Starlette:
    return create_app(Runtime(load_settings(project), clock=clock))


def browser(app: Starlette, address: str) -> TestClient:
    return TestClient(app, base_url=ORIGIN, client=(address, 5))


def lock_the_account(app: Starlette) -> None:
    """Strangers from many addresses (5 each: the per-address limit) guess wrong."""
    for n in range(ACCOUNT_FAILURES):
        assert attempt(browser(app, f"198.51.100.{n // 5}"), "a wrong guess").status_code == 401


def known_device_of(app: Starlette, address: str = "203.0.113.7") -> TestClient:
    """The author's own browser, logged in once (and out again) before the strangers came."""
    author = browser(app, address)
    answer = attempt(author, PASSWORD)
    assert answer.status_code == 303
    cookie = answer.headers.get_list("set-cookie")
    [device] = [c for c in cookie if c.startswith(f"{auth.DEVICE_COOKIE}=")]
    assert "HttpOnly" in device and "SameSite=strict" in device and "Path=/desk" in device
    assert "Max-Age=7776000" in device  # [desk] known_device_days = 90
    author.cookies.delete(auth.SESSION_COOKIE)
    return author


def test_a_stranger_lock_refuses_a_fresh_browser_but_lets_the_author_in(
    desk_project: Path, clock: Clock
) -> None:
    app = app_for(desk_project, clock)
    author = known_device_of(app)
    lock_the_account(app)

    fresh = attempt(browser(app, "203.0.113.7"), PASSWORD)  # same address, no known device
    assert fresh.status_code == 429 and "Too many attempts" in fresh.text

    answer = attempt(author, PASSWORD)
    assert answer.status_code == 303, answer.text[:400]
    assert author.get("/desk/").status_code == 200
    # The author getting in does not lift the strangers' lock.
    assert attempt(browser(app, "192.0.2.1"), PASSWORD).status_code == 429
    # A known device still needs the password.
    author.cookies.delete(auth.SESSION_COOKIE)
    assert attempt(author, "not the password").status_code == 401


def test_a_forged_foreign_old_or_forgotten_device_cookie_does_not_exempt(
    desk_project: Path, clock: Clock
) -> None:
    app = app_for(desk_project, clock)
    author = known_device_of(app)
    genuine = author.cookies.get(auth.DEVICE_COOKIE)
    assert genuine
    epoch = queries.device_epoch(engine_of(desk_project))
    lock_the_account(app)

    addresses = iter(range(1, 100))

    def with_cookie(value: str) -> int:
        client = browser(app, f"203.0.113.{next(addresses)}")  # one try each: no address limit
        client.cookies.set(auth.DEVICE_COOKIE, value, path="/desk")
        return attempt(client, PASSWORD).status_code

    forged = genuine[:-3] + ("AAA" if not genuine.endswith("AAA") else "BBB")
    other_key = URLSafeTimedSerializer(b"another installation's key", salt="syndicate.desk.device")
    foreign = other_key.dumps({"device": "x", "epoch": epoch})
    assert [with_cookie(v) for v in (forged, foreign, "", "garbage")] == [429] * 4

    # Issued 91 days ago: older than [desk] known_device_days.
    class Past(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 91 * 86400

    key = Runtime(load_settings(desk_project)).key
    past = URLSafeTimedSerializer(key, salt="syndicate.desk.device", signer=Past)
    assert with_cookie(past.dumps({"device": "x", "epoch": epoch})) == 429
    assert with_cookie(genuine) == 303, "the genuine one still works"

    # A new password forgets every known device.
    set_password(desk_project, "another long password")
    assert with_cookie(genuine) == 429


def test_the_lock_is_shared_by_every_serve_process_and_desk_unlock_clears_it(
    desk_project: Path, clock: Clock
) -> None:
    first, second = app_for(desk_project, clock), app_for(desk_project, clock)
    lock_the_account(first)
    assert attempt(browser(second, "192.0.2.1"), PASSWORD).status_code == 429

    done = run_cli(desk_project, "desk", "unlock")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("The desk was locked until ")
    assert done.stdout.rstrip().endswith("; it is unlocked now.")
    with engine_of(desk_project).connect() as conn:
        assert db.login_lock.state(conn).locked_until is None
    assert attempt(browser(second, "192.0.2.1"), PASSWORD).status_code == 303
    again = run_cli(desk_project, "desk", "unlock")
    assert again.stdout.strip() == "The desk was not locked."


def test_a_known_device_is_still_limited_per_address(desk_project: Path, clock: Clock) -> None:
    app = app_for(desk_project, clock)
    author = known_device_of(app, "203.0.113.50")
    for _ in range(4):  # with the login above, 5 attempts: [desk] login_attempts
        assert attempt(author, "a wrong guess").status_code == 401
    assert attempt(author, PASSWORD).status_code == 429
