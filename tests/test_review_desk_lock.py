"""Review findings on the desk's account-wide login lock (branch `desk`, syndicate/desk/login.py).

1. The lock is checked before the password check waits for its turn (`password_checks`, two at a
   time) and never again: strangers who send their guesses at once, from many addresses, all get
   their password checked although the 20th wrong one locked the account.
2. Logging out ("on every device") leaves the known-device cookie known: whoever uses that browser
   next is let past a stranger's lock.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from syndicate.desk import auth
from syndicate.desk.login import ACCOUNT_FAILURES
from syndicate.runtime import Runtime
from syndicate.web.app import create_app
from tests.support.desk import (
    ORIGIN,
    PASSWORD,
    SAME,
    TestClient,
    attempt,
    desk_at_origin,
    field,
    set_password,
)
from tests.support.scheduling import Clock
from tests.support.web_client import load_settings

STRANGERS = 2 * ACCOUNT_FAILURES  # one guess each, from as many addresses


@pytest.fixture
def desk_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return desk_at_origin(project, monkeypatch)


def app_for(project: Path) -> Starlette:
    clock = Clock(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    return create_app(Runtime(load_settings(project), clock=clock))


async def _guess(app: Starlette, address: str, start: asyncio.Event) -> int:
    transport = httpx.ASGITransport(app=app, client=(address, 5))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
        page = await client.get("/desk/login")
        await start.wait()
        answer = await client.post(
            "/desk/login",
            data={"csrf": field(page.text), "password": "a wrong guess", "next": "/desk/"},
            headers=SAME,
        )
        return answer.status_code


async def _all_at_once(app: Starlette) -> list[int]:
    start = asyncio.Event()
    guesses = [
        asyncio.create_task(_guess(app, f"198.51.{n // 250}.{n % 250}", start))
        for n in range(STRANGERS)
    ]
    await asyncio.sleep(0.2)  # every stranger holds a login form
    start.set()
    return await asyncio.gather(*guesses)


def test_guesses_sent_at_once_are_not_all_checked_past_the_account_lock(
    desk_project: Path,
) -> None:
    set_password(desk_project, cheap=False)  # the guesses must overlap, as real checks do
    statuses = asyncio.run(_all_at_once(app_for(desk_project)))
    checked = statuses.count(401)  # a password compared with the hash and found wrong
    assert checked + statuses.count(429) == STRANGERS, statuses
    assert checked <= ACCOUNT_FAILURES, (
        f"{checked} passwords were checked by argon2 although the account locks after "
        f"{ACCOUNT_FAILURES} wrong ones: the lock is read before the password-check queue"
    )


def test_logout_on_every_device_forgets_the_known_device(desk_project: Path) -> None:
    app = app_for(desk_project)
    shared = TestClient(app, base_url=ORIGIN, client=("203.0.113.7", 5))  # a library computer
    assert attempt(shared, PASSWORD).status_code == 303
    desk = shared.get("/desk/")
    logout = shared.post("/desk/logout", data={"csrf": field(desk.text)}, headers=SAME)
    assert "logged out of the desk, on every device" in logout.text
    assert shared.get("/desk/", follow_redirects=False).status_code in (302, 303)
    for n in range(ACCOUNT_FAILURES):  # strangers lock the account
        stranger = TestClient(app, base_url=ORIGIN, client=(f"198.51.100.{n // 5}", 5))
        assert attempt(stranger, "a wrong guess").status_code == 401
    assert attempt(TestClient(app, base_url=ORIGIN), "a wrong guess").status_code == 429
    # The next person at the logged-out browser is treated as the author's known device.
    next_user = attempt(shared, "another guess")
    assert auth.DEVICE_COOKIE in shared.cookies
    assert next_user.status_code == 429, (
        "after 'logged out on every device', the browser's device cookie still gets past the "
        f"account lock (answered {next_user.status_code}: the password was checked)"
    )
