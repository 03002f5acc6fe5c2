"""A post on the desk: the edition in its sandboxed frame, the column drafts and their files, and
the author's actions, each of which must change exactly what the same CLI command changes."""

from __future__ import annotations

import io
import zipfile
from dataclasses import asdict
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from syndicate import db
from syndicate.cli import app as cli_app
from syndicate.models import RecipientKind, SendState
from syndicate.runtime import Runtime
from syndicate.scheduling import jobs
from syndicate.scheduling.timeparse import describe, parse_future, short
from tests.support.desk import (
    SAME,
    SECRET,
    client_for,
    engine_of,
    field,
    login,
    set_password,
    use_base_url,
)
from tests.support.inbound import copy_project
from tests.support.postgres import pin_database
from tests.support.scheduling import configure, outbox
from tests.support.web_client import load_settings

# What may differ between a send changed by the desk and one changed by the CLI: who approved.
WHO = ("approved_by", "approved_at")


@pytest.fixture
def desk_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped project with its newest post recorded and both sends awaiting approval."""
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", SECRET)
    use_base_url(project)
    pin_database(project)  # on PostgreSQL, a database of its own that twin() can copy
    settings = configure(project, newsletter__policy="manual", column__policy="manual")
    jobs.poll_feed(Runtime(settings, engine=engine_of(project)))
    set_password(project)
    return project


def twin(project: Path, tmp_path: Path) -> Path:
    """The same project, database included, for the CLI to do what the desk did."""
    return copy_project(project, tmp_path / "twin")


def cli(project: Path, *args: str) -> None:
    result = CliRunner().invoke(cli_app, ["--config", str(project / "settings.toml"), *args])
    assert result.exit_code == 0, (result.output, result.exception)


def the_sends(project: Path) -> dict[str, dict]:
    with engine_of(project).connect() as conn:
        rows = db.sends.list_sends(conn, 100)
    return {row.channel.value: asdict(row) for row in rows}


def comparable(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in WHO}


def post_id(project: Path) -> int:
    return next(iter(the_sends(project).values()))["post_id"]


def confirm_and_do(client, path: str, data: dict[str, str], csrf: str) -> str:
    """Posts the form, checks that the answer only asks, then presses 'Yes'; returns the
    confirmation's text."""
    asked = client.post(path, data={"csrf": csrf, **data}, headers=SAME)
    assert asked.status_code == 200, asked.text
    assert "Please confirm" in asked.text
    hidden = dict(
        (name, field(asked.text, name))
        for name in ("confirm", "channel", "at_at", "embargo_at")
        if f'name="{name}"' in asked.text
    )
    done = client.post(path, data={"csrf": csrf, **hidden}, headers=SAME, follow_redirects=False)
    assert done.status_code == 303, done.text
    return asked.text


def test_post_page_shows_the_edition_sandboxed_and_the_column_per_profile(
    desk_project: Path,
) -> None:
    client = client_for(desk_project)
    login(client)
    pid = post_id(desk_project)
    page = client.get(f"/desk/posts/{pid}")
    assert page.status_code == 200
    assert "awaiting approval" in page.text
    frame = f'sandbox="" title="Reader edition, 600 px, light" src="/desk/posts/{pid}/edition'
    assert frame + '?scheme=light"' in page.text
    assert "bytes of Gmail’s 104,448" in page.text
    narrow = client.get(f"/desk/posts/{pid}?width=320&scheme=dark")
    assert 'class="w320"' in narrow.text and "edition?scheme=dark" in narrow.text

    framed = client.get(f"/desk/posts/{pid}/edition")
    csp = framed.headers["content-security-policy"]
    assert "sandbox" in csp and "frame-ancestors 'self'" in csp and "script-src" not in csp
    assert framed.headers["x-frame-options"] == "SAMEORIGIN"
    assert "prefers-color-scheme: dark" in framed.text
    dark = client.get(f"/desk/posts/{pid}/edition?scheme=dark")
    assert "prefers-color-scheme" not in dark.text and "@media all" in dark.text

    # The shipped editors.csv has editors with different profiles: one draft for each.
    assert page.text.count('class="draft"') >= 2
    docx = client.get(f"/desk/posts/{pid}/column/0.docx")
    assert docx.status_code == 200 and "attachment" in docx.headers["content-disposition"]
    assert "word/document.xml" in zipfile.ZipFile(io.BytesIO(docx.content)).namelist()
    nitf = client.get(f"/desk/posts/{pid}/column/0.xml")
    assert ElementTree.fromstring(nitf.content).tag == "nitf"
    html = client.get(f"/desk/posts/{pid}/column/1.html")
    assert html.status_code == 200 and b"<html" in html.content.lower()
    assert client.get(f"/desk/posts/{pid}/column/99.txt").status_code == 404
    assert client.get(f"/desk/posts/{pid}/column/0.exe").status_code == 404
    assert client.get("/desk/posts/999999").status_code == 404


def test_schedule_echoes_the_time_then_does_what_the_cli_does(
    desk_project: Path, tmp_path: Path
) -> None:
    other = twin(desk_project, tmp_path)
    client = client_for(desk_project)
    csrf = login(client)
    pid = post_id(desk_project)
    settings = load_settings(desk_project)
    expected = parse_future("tomorrow 07:00", settings.zone, db.now())
    before = the_sends(desk_project)
    asked = client.post(
        f"/desk/posts/{pid}/schedule",
        data={"csrf": csrf, "channel": "newsletter", "at": "tomorrow 07:00"},
        headers=SAME,
    )
    assert describe(expected, settings.zone) in asked.text
    assert the_sends(desk_project) == before, "asking changes nothing"
    confirm_and_do(
        client,
        f"/desk/posts/{pid}/schedule",
        {"channel": "newsletter", "at": "tomorrow 07:00"},
        csrf,
    )
    cli(other, "schedule", str(pid), "--channel", "newsletter", "--at", "tomorrow 07:00")
    ours, theirs = the_sends(desk_project), the_sends(other)
    assert ours["newsletter"]["state"] == "awaiting_approval"
    assert db.as_utc(ours["newsletter"]["scheduled_at"]) == expected
    assert comparable(ours["newsletter"]) == comparable(theirs["newsletter"])
    assert ours["column"] == theirs["column"]


def test_hold_approve_cancel_and_reschedule_match_the_cli(
    desk_project: Path, tmp_path: Path
) -> None:
    other = twin(desk_project, tmp_path)
    client = client_for(desk_project)
    csrf = login(client)
    sends = the_sends(desk_project)
    letter, column = sends["newsletter"]["id"], sends["column"]["id"]

    confirm_and_do(client, f"/desk/sends/{letter}/approve", {}, csrf)
    cli(other, "approve", str(letter))
    assert the_sends(desk_project)["newsletter"]["approved_by"] == "desk"
    confirm_and_do(client, f"/desk/sends/{letter}/hold", {}, csrf)
    cli(other, "hold", str(letter))
    text = confirm_and_do(
        client, f"/desk/sends/{column}/reschedule", {"at": "tomorrow 09:00", "embargo": "+2d"}, csrf
    )
    assert "embargo until" in text
    cli(other, "reschedule", str(column), "--at", "tomorrow 09:00", "--embargo", "+2d")
    text = confirm_and_do(client, f"/desk/sends/{column}/cancel", {}, csrf)
    assert "delivered stay delivered" in text
    cli(other, "cancel", str(column))

    ours, theirs = the_sends(desk_project), the_sends(other)
    assert ours["newsletter"]["state"] == "held" and ours["column"]["state"] == "cancelled"
    for channel in ("newsletter", "column"):
        mine, cli_row = comparable(ours[channel]), comparable(theirs[channel])
        for stamp in ("finished_at",):  # set from the clock when each acted
            assert (mine.pop(stamp) is None) == (cli_row.pop(stamp) is None)
        assert mine == cli_row, channel


def test_refusals_are_one_line_and_change_nothing(desk_project: Path) -> None:
    client = client_for(desk_project)
    csrf = login(client)
    pid = post_id(desk_project)
    column = the_sends(desk_project)["column"]["id"]
    before = the_sends(desk_project)
    past = client.post(
        f"/desk/posts/{pid}/schedule",
        data={"csrf": csrf, "channel": "newsletter", "at": "2020-01-01 07:00"},
        headers=SAME,
    )
    assert past.status_code == 400 and "is in the past" in past.text
    early = client.post(
        f"/desk/sends/{column}/reschedule",
        data={
            "csrf": csrf,
            "confirm": "yes",
            "at_at": "2030-01-02T07:00:00+00:00",
            "embargo_at": "2030-01-01T07:00:00+00:00",
        },
        headers=SAME,
    )
    assert early.status_code == 400 and "earlier than the send" in early.text
    nonsense = client.post(
        f"/desk/posts/{pid}/schedule",
        data={"csrf": csrf, "channel": "radio", "at": "tomorrow 07:00"},
        headers=SAME,
    )
    assert nonsense.status_code == 400 and "Traceback" not in nonsense.text
    assert the_sends(desk_project) == before
    confirm_and_do(client, f"/desk/sends/{column}/cancel", {}, csrf)
    again = client.post(
        f"/desk/sends/{column}/hold", data={"csrf": csrf, "confirm": "yes"}, headers=SAME
    )
    assert again.status_code == 400 and "was cancelled; cannot hold it" in again.text
    letter = the_sends(desk_project)["newsletter"]["id"]
    with engine_of(desk_project).begin() as conn:
        db.sends.set_send_state(conn, letter, SendState.DONE)
    late = client.post(
        f"/desk/sends/{letter}/reschedule",
        data={"csrf": csrf, "confirm": "yes", "at_at": "2030-01-02T07:00:00+00:00"},
        headers=SAME,
    )
    assert late.status_code == 400 and "was already delivered; cannot reschedule it" in late.text


def test_send_a_test_to_me_writes_one_marked_copy(desk_project: Path) -> None:
    client = client_for(desk_project)
    csrf = login(client)
    pid = post_id(desk_project)
    author = load_settings(desk_project).author.email
    before = len(outbox(desk_project))
    answer = client.post(
        f"/desk/posts/{pid}/test",
        data={"csrf": csrf, "channel": "newsletter"},
        headers=SAME,
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"].endswith("?done=test")
    [copy] = outbox(desk_project)[before:]
    assert copy["To"].addresses[0].addr_spec == author
    assert str(copy["Subject"]).startswith("[TEST] ")
    assert "Test copy sent to you" in client.get(answer.headers["location"]).text
    assert the_sends(desk_project)["newsletter"]["state"] == "awaiting_approval"


def test_home_shows_what_comes_next_in_the_authors_zone(desk_project: Path) -> None:
    client = client_for(desk_project)
    login(client)
    settings = load_settings(desk_project)
    letter = the_sends(desk_project)["newsletter"]
    home = client.get("/desk/").text
    assert "Times in America/Toronto" in home
    assert short(db.as_utc(letter["scheduled_at"]), settings.zone) in home
    assert home.count("awaiting approval") == 2 and '<td class="hide-narrow">manual</td>' in home
    assert 'hx-get="/desk/progress" hx-trigger="every 3s"' in home


def test_going_out_now_counts_refresh_as_a_fragment(desk_project: Path) -> None:
    client = client_for(desk_project)
    login(client)
    letter = the_sends(desk_project)["newsletter"]["id"]
    assert "Nothing is going out right now" in client.get("/desk/progress").text
    with engine_of(desk_project).begin() as conn:
        planned = db.deliveries.plan_deliveries(conn, letter, RecipientKind.READER)
        db.sends.set_send_state(conn, letter, SendState.SENDING)
    fragment = client.get("/desk/progress").text
    assert "<html" not in fragment, "a fragment, not a page"
    assert f"0 sent, {planned} to go" in fragment and f'max="{planned}" value="0"' in fragment


def test_a_send_waiting_for_the_column_embargo_says_so(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", SECRET)
    use_base_url(project)
    settings = configure(project, column__embargo="+2d", column__policy="manual")
    jobs.poll_feed(Runtime(settings, engine=engine_of(project)))
    set_password(project)
    client = client_for(project)
    login(client)
    home = client.get("/desk/").text
    assert "waiting for embargo" in home
    pid = post_id(project)
    assert "waiting for embargo" in client.get(f"/desk/posts/{pid}").text
