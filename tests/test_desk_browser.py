"""The author's whole day on the desk in a real Chromium (Debian's, driven by Playwright):
log in; the demo post previewed at 320 px and in dark mode; a test copy that arrives at a real
SMTP server; a post scheduled "tomorrow 07:00", held and approved; a reader's reply read and
answered (the answer arrives threaded with the right In-Reply-To); a Mailchimp export uploaded
and its report read; logged out; strangers lock the account, yet this browser (a known device)
logs in again while a fresh one is refused.

On every desk page axe-core (tools/desk-a11y, the npm package) must find no serious or critical
violation, and nothing may be wider than a 390 px phone. Screenshots at 390 and 1280 px are kept
in tests/artifacts/desk/ (CI keeps that folder as an artefact).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from syndicate import db
from syndicate.desk import queries
from syndicate.desk.auth import DEVICE_COOKIE
from syndicate.desk.login import ACCOUNT_FAILURES, AccountLockout
from syndicate.feedwatch.health import health
from syndicate.inbound import pipeline
from syndicate.models import RecipientKind, SendState
from syndicate.runtime import Runtime
from syndicate.scheduling.timeparse import describe, parse_future
from syndicate.web.app import create_app
from tests.conftest import RecordingHandler, free_port, running_smtp, set_setting
from tests.support.browser import chromium as launch_chromium
from tests.support.desk import PASSWORD, set_password
from tests.support.inbound import (
    KEY,
    fixture,
    load,
    sent_project,
    signed_ids,
    use_smtp,
)
from tests.support.tools import missing
from tests.support.web import serving

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "tools" / "desk-a11y" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "tests" / "artifacts" / "desk"
IMPORTS = Path(__file__).parent / "fixtures" / "imports"
READER_MESSAGE_ID = "<CAF3x9q7pY2=gmail-en-0001@mail.gmail.com>"
# One long journey (about a minute on a quiet machine) rather than many short ones: each page is
# reached the way the author reaches it.
pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path, object]]:
    """The example project after one send, a reader's reply filed, mail going to a real SMTP
    server; the app under uvicorn on 127.0.0.1 as `syndicate serve` runs it."""
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", KEY)
    project = sent_project(tmp_path / "project")
    settings, engine, key = load(project)
    raw = signed_ids(project, fixture("gmail_en.eml"))
    pipeline.process(Runtime(settings, engine=engine, key=key), raw, source="test")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    set_setting(
        project / "settings.toml",
        'base_url = "https://notes.example.com/newsletter"',
        f'base_url = "{base}"',
    )
    with running_smtp(RecordingHandler()) as (controller, sink):
        use_smtp(project, controller.port)
        with serving(create_app(Runtime(load(project)[0])), port):
            yield base, project, sink


def received(sink: object) -> list[EmailMessage]:
    return [message_from_bytes(m.data, policy=policy.default) for m in sink.messages]


class Desk:
    """The browser page, with the checks every desk page must pass."""

    def __init__(self, page: object, axe: str) -> None:
        self.page = page
        self.axe = axe
        self.checked: list[str] = []

    def check(self, name: str) -> None:
        page = self.page
        # The page, its stylesheet and htmx: the desk asks nothing more at load (the home
        # page's progress is polled every 3 s, which "networkidle" would wait 0.5 s to rule out).
        page.wait_for_load_state("load")
        page.evaluate(self.axe)
        found = page.evaluate(
            """async () => {
                const result = await axe.run(document, {resultTypes: ["violations"]});
                return result.violations
                    .filter(v => v.impact === "serious" || v.impact === "critical")
                    .map(v => `${v.id} (${v.impact}): ${v.help} at ` +
                              v.nodes.map(n => n.target.join(" ")).join(", "));
            }"""
        )
        assert not found, f"{name}: axe found\n" + "\n".join(found)
        for width in (390, 1280):
            page.set_viewport_size({"width": width, "height": 900})
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= width, f"{name} is {wide} px wide at {width} px"
            page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})
        self.checked.append(name)

    def heading(self) -> str:
        return self.page.get_by_role("heading", level=1).inner_text()

    def press(self, name: str) -> None:
        """Press a button that submits a form, and wait for the page it leads to."""
        with self.page.expect_navigation():
            self.page.get_by_role("button", name=name).click()


def test_the_authors_day_on_the_desk_in_chromium(served: tuple[str, Path, object]) -> None:
    base, project, sink = served
    if not AXE.exists():
        missing("axe-core is not installed: npm ci --prefix tools/desk-a11y")
    SHOTS.mkdir(parents=True, exist_ok=True)
    settings, engine, _ = load(project)
    with engine.connect() as conn:
        posts = sorted(conn.execute(db.schema.posts.select()).mappings(), key=lambda p: p["id"])
        [sent_post] = {s.post_id for s in db.sends.list_sends(conn)}
    demo = next(p for p in posts if p["id"] == sent_post)
    other = next(p for p in posts if p["id"] != sent_post)

    with launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        desk = Desk(page, AXE.read_text(encoding="utf-8"))

        # Before a password is set, the desk says how to set one.
        page.goto(f"{base}/desk/")
        assert desk.heading() == "Set a password first"
        desk.check("setup")
        set_password(project)

        # Log in.
        page.goto(f"{base}/desk/")
        assert desk.heading() == "Log in to the desk"
        desk.check("login")
        page.get_by_label("Password").fill(PASSWORD)
        desk.press("Log in")
        assert page.url == f"{base}/desk/", page.content()[-1500:]
        desk.check("home")
        assert page.get_by_text("Nothing is going out right now.").is_visible()
        # The feed's health: the line `syndicate status` prints.
        line = health(engine, settings).line(settings.zone)
        assert page.locator("#feed-health").inner_text() == line
        assert line.startswith(f"Feed: {settings.feed.source} (last checked ")
        # This browser is now a known device (signed, HttpOnly).
        [device] = [c for c in page.context.cookies() if c["name"] == DEVICE_COOKIE]
        assert device["httpOnly"] and device["sameSite"] == "Strict"

        # The demo post, previewed narrow and dark.
        page.get_by_role("link", name=demo["title"]).first.click()
        assert desk.heading() == demo["title"]
        desk.check("post")
        page.get_by_role("link", name="320 px").click()
        page.get_by_role("link", name="dark").click()
        frame = page.locator("iframe")
        assert frame.get_attribute("class") == "w320"
        assert frame.evaluate("f => f.getBoundingClientRect().width") == 320
        assert "scheme=dark" in (frame.get_attribute("src") or "")
        inside = page.frame_locator("iframe").locator("body")
        assert demo["title"] in inside.inner_text()
        background = inside.evaluate(
            "b => getComputedStyle(b.querySelector('.frame-cell, .container-cell') || b)"
            ".backgroundColor"
        )
        assert background in ("rgb(27, 26, 23)", "rgb(38, 37, 34)"), background
        desk.check("post-320-dark")

        # A test copy to me arrives at the SMTP server.
        desk.press(f"Send the reader edition to {settings.author.email}")
        assert page.get_by_text("Test copy sent to you.").is_visible()
        [copy] = [m for m in received(sink) if str(m["Subject"]).startswith("[TEST]")]
        assert copy["To"].addresses[0].addr_spec == settings.author.email

        # Another post: scheduled "tomorrow 07:00" (read back first), held, approved.
        page.goto(f"{base}/desk/posts/{other['id']}")
        page.get_by_label("When").fill("tomorrow 07:00")
        desk.press("Schedule…")
        expected = parse_future("tomorrow 07:00", settings.zone, db.now())
        assert describe(expected, settings.zone) in page.locator("#what").inner_text()
        desk.check("confirm")
        desk.press("Yes, do it")
        assert page.get_by_text("Scheduled.").is_visible()
        send = next(s for s in store_sends(engine) if s["post_id"] == other["id"])
        assert send["state"] == "scheduled"
        assert db.as_utc(send["scheduled_at"]) == expected
        desk.press(f"Hold send {send['id']}")
        desk.press("Yes, do it")
        assert store_send(engine, send["id"])["state"] == "held"
        desk.press(f"Approve send {send['id']}")
        desk.press("Yes, do it")
        assert store_send(engine, send["id"])["state"] == "scheduled"
        assert store_send(engine, send["id"])["approved_by"] == "desk"
        desk.check("post-scheduled")

        # It starts going out: the home page's counts change without a reload.
        page.goto(f"{base}/desk/")
        with engine.begin() as conn:
            planned = db.deliveries.plan_deliveries(conn, send["id"], RecipientKind.READER)
            db.sends.set_send_state(conn, send["id"], SendState.SENDING)
        page.evaluate("window.notReloaded = true")
        progress = page.locator("#progress").get_by_text(f"0 sent, {planned} to go")
        progress.wait_for(timeout=10_000)
        assert page.evaluate("window.notReloaded === true")
        desk.check("home-sending")

        # A reader's reply, read and answered.
        page.get_by_role("navigation").get_by_role("link", name="Replies").click()
        desk.check("replies")
        page.get_by_role("link", name=re.compile("job is not the work")).first.click()
        assert page.get_by_text("I spent twenty years confusing my job title").is_visible()
        desk.check("reply")
        page.get_by_label(re.compile("Your answer")).fill("Thank you, Margaret.\n\nJane")
        desk.press("Send answer")
        assert page.get_by_text("Your answer was sent.").is_visible()
        [answer] = [m for m in received(sink) if m["In-Reply-To"]]
        assert answer["In-Reply-To"] == READER_MESSAGE_ID
        assert answer["To"].addresses[0].addr_spec == "margaret.holloway@example.com"

        # A Mailchimp export, uploaded; the report read.
        page.get_by_role("navigation").get_by_role("link", name="Subscribers").click()
        desk.check("subscribers")
        page.get_by_label(re.compile("Export from Mailchimp")).set_input_files(
            str(IMPORTS / "mailchimp_subscribed.csv")
        )
        desk.press("Import")
        report = page.get_by_role("status", name="Import report").inner_text()
        assert "mailchimp export" in report and "new subscriber(s) were added" in report
        desk.check("subscribers-imported")
        page.get_by_role("link", name="ann.lee@example.com").click()
        desk.check("person")

        desk.press("Log out")
        assert desk.heading() == "Logged out"
        desk.check("logged-out")
        page.goto(f"{base}/desk/")
        assert desk.heading() == "Log in to the desk"

        # Logging out forgot this browser as a known device: strangers' wrong passwords
        # lock it out like any other, until `syndicate desk unlock` (a right password).
        lockout = AccountLockout(
            Runtime(settings, engine=engine),
            ACCOUNT_FAILURES,
            settings.desk.login_window_seconds,
        )
        for _ in range(ACCOUNT_FAILURES):
            lockout.wrong()
        page.get_by_label("Password").fill(PASSWORD)
        desk.press("Log in")
        assert page.get_by_text("Too many attempts.").is_visible()
        lockout.right()
        page.get_by_label("Password").fill(PASSWORD)
        desk.press("Log in")
        assert desk.heading() == settings.site.name
        queries.end_sessions(engine)  # its session ends; it stays a known device
        page.goto(f"{base}/desk/")
        assert desk.heading() == "Log in to the desk"

        # Strangers' wrong passwords lock the account: a fresh browser is refused, this
        # one (a known device) still gets in.
        for _ in range(ACCOUNT_FAILURES):
            lockout.wrong()
        assert lockout.refused_for() > 0
        stranger = browser.new_page(viewport={"width": 390, "height": 800})
        stranger.goto(f"{base}/desk/login")
        stranger.get_by_label("Password").fill(PASSWORD)
        stranger.get_by_role("button", name="Log in").click()
        assert stranger.get_by_text("Too many attempts.").is_visible()
        stranger.close()

        # A session that ends while the home page polls takes the page to the login.
        page.get_by_label("Password").fill(PASSWORD)
        desk.press("Log in")
        assert desk.heading() == settings.site.name
        queries.end_sessions(engine)
        page.wait_for_url(f"{base}/desk/login", timeout=10_000)
        assert not [e for e in errors if "Content Security Policy" in e], errors
    assert len(desk.checked) == 14


def store_sends(engine: object) -> list[dict]:
    with engine.connect() as conn:
        return [asdict(row) for row in db.sends.list_sends(conn)]


def store_send(engine: object, send_id: int) -> dict:
    with engine.connect() as conn:
        row = db.sends.get_send(conn, send_id)
    assert row is not None
    return asdict(row)
