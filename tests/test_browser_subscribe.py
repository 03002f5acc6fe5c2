"""A real headless Chromium (Debian's, driven by Playwright) through the whole reader journey:
subscribe form → confirmation link from the outbox → the newsletter → unsubscribe with one button.
The app runs under uvicorn on 127.0.0.1 in a thread, exactly as `syndicate serve` runs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from syndicate import db
from syndicate.runtime import Runtime
from syndicate.scheduling import jobs
from syndicate.web.app import create_app
from tests.conftest import free_port, set_setting
from tests.support.browser import chromium as launch_chromium
from tests.support.web import serving
from tests.support.web_client import confirmation_link, load_settings

# Flags research.md lists for Debian's Chromium in a container.
ADDRESS = "browser.reader@example.com"


@pytest.fixture
def served(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", "browser-test-key-of-at-least-32-bytes")
    set_setting(
        project / "settings.toml",
        'base_url = "https://notes.example.com/newsletter"',
        f'base_url = "{base}"',
    )
    with serving(create_app(Runtime(load_settings(project))), port):
        yield base


def edition_unsubscribe_url(project: Path) -> str:
    for path in sorted((project / "outbox").glob("*.eml")):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        if ADDRESS in str(msg["To"]) and msg["List-Unsubscribe"]:
            assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            return re.search(r"<(http[^>]+)>", str(msg["List-Unsubscribe"])).group(1)
    raise AssertionError(f"no newsletter edition for {ADDRESS} in the outbox")


def reader_status(project: Path) -> str:
    engine = db.connect(load_settings(project).database_url)
    with engine.connect() as conn:
        [row] = db.recipients.recipients_by_email(conn, ADDRESS)
    return row.status


def reader_status_or_none(project: Path) -> str | None:
    engine = db.connect(load_settings(project).database_url)
    with engine.connect() as conn:
        rows = db.recipients.recipients_by_email(conn, ADDRESS)
    return rows[0].status if rows else None


def test_subscribe_confirm_receive_and_unsubscribe_in_chromium(project: Path, served: str) -> None:
    with launch_chromium() as browser:
        page = browser.new_page()
        page.goto(f"{served}/subscribe")
        # The page is styled under its Content-Security-Policy (nonce'd stylesheet): the
        # honeypot field is moved off-screen, not shown.
        trap = page.locator(".trap")
        assert trap.evaluate("e => getComputedStyle(e).position") == "absolute"
        page.get_by_label("Email address").fill(ADDRESS)
        page.get_by_label("Your name").fill("Bea Browser")
        page.get_by_role("button", name="Subscribe").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", level=1).inner_text() == "Check your inbox"

        page.goto(confirmation_link(project, ADDRESS))
        assert page.get_by_role("heading", level=1).inner_text() == "Confirm your subscription"
        assert reader_status_or_none(project) is None, "opening the link must not confirm"
        page.get_by_role("button", name="Confirm my subscription").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", level=1).inner_text() == "You’re subscribed"
        assert reader_status(project) == "active"

        # The next edition reaches the new reader with a personal one-click link.
        jobs.run_once(Runtime(load_settings(project)))
        page.goto(edition_unsubscribe_url(project))
        assert reader_status(project) == "active", "a GET must never unsubscribe"
        buttons = page.get_by_role("button")
        assert buttons.count() == 1
        buttons.click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", level=1).inner_text() == "You’re unsubscribed"
        assert reader_status(project) == "unsubscribed"
