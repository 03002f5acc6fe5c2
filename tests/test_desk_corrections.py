"""Pending corrections on the desk's home page: listed with what changed, sent or dropped by the
same functions `syndicate corrections send/drop` call, behind the desk's session, CSRF and
Origin checks. The correction is real: a feed served over HTTP, edited after a column went out
over SMTP (the fixtures of tests/test_corrections_flow.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from syndicate import db
from syndicate.corrections import listing, rows
from syndicate.scheduling.timeparse import short
from tests import test_corrections_flow as flow
from tests.support.desk import SAME, SECRET, client_for, login, set_password, use_base_url
from tests.support.web_client import load_settings

# The flow's fixtures: the blog's feed and the column delivered to two editors.
feed = flow.feed
delivered = flow.delivered


@pytest.fixture(autouse=True)
def desk_ready(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", SECRET)
    use_base_url(project)


@pytest.fixture
def pending(delivered, project: Path):
    """The post's headline edited after release: one pending correction; the desk logged in."""
    cfg, engine, handler, feed, originals = delivered
    feed.posts[2] = ("Walls and bread", flow.BODY)
    [correction] = flow.poll(cfg, engine, flow.AFTER_RELEASE)
    assert correction.state is rows.CorrectionState.PENDING
    set_password(project)
    client = client_for(project)
    csrf = login(client)
    return client, csrf, correction, engine, handler, originals


def test_the_home_page_lists_a_pending_correction(pending, project) -> None:
    client, _, correction, *_ = pending
    page = client.get("/desk/").text
    assert '<h2 id="corrections">Corrections</h2>' in page
    assert "Walls and bread" in page
    assert "changes the headline" in page
    assert "headline (changed): removed “words”; added “bread”" in page
    assert ">CORRECTION<" in page  # released two days ago: it would go as a CORRECTION
    assert '<td class="num">2</td>' in page  # both editors had it
    found = short(db.as_utc(correction.created_at), load_settings(project).zone)
    assert found in page  # when it was found
    assert f"/desk/corrections/{correction.id}/send" in page
    assert f"/desk/corrections/{correction.id}/drop" in page


def test_send_from_the_desk_sends_the_advisory_as_the_cli_would(pending) -> None:
    client, csrf, correction, engine, handler, originals = pending
    answer = client.post(
        f"/desk/corrections/{correction.id}/send",
        data={"csrf": csrf, "confirm": "yes"},
        headers=SAME,
    )
    assert answer.status_code == 200, answer.text
    assert "CORRECTION sent to 2 editor(s)" in answer.text
    advisories = flow.messages(handler, "CORRECTION: ")
    assert {m["To"].addresses[0].addr_spec for m in advisories} == {flow.SAM, flow.FIONA}
    for advisory in advisories:
        editor = advisory["To"].addresses[0].addr_spec
        assert advisory["In-Reply-To"] == originals[editor]["Message-ID"]
    sent, deliveries = listing.show(engine, correction.id)
    assert (sent.state, sent.advisory, sent.approved_by) == (
        rows.CorrectionState.SENT,
        "correction",
        "desk",
    )
    assert sorted(d["email"] for d in deliveries) == sorted([flow.SAM, flow.FIONA])
    assert 'id="corrections"' not in client.get("/desk/").text  # nothing pending now
    again = client.post(
        f"/desk/corrections/{correction.id}/send",
        data={"csrf": csrf, "confirm": "yes"},
        headers=SAME,
    )
    assert again.status_code == 400 and "already sent" in again.text
    assert len(flow.messages(handler, "CORRECTION: ")) == 2


def test_drop_from_the_desk_leaves_editors_alone(pending) -> None:
    client, csrf, correction, engine, handler, _ = pending
    answer = client.post(
        f"/desk/corrections/{correction.id}/drop",
        data={"csrf": csrf, "confirm": "yes"},
        headers=SAME,
    )
    assert answer.status_code == 200, answer.text
    assert "dropped; editors are not told" in answer.text
    assert listing.show(engine, correction.id)[0].state is rows.CorrectionState.DROPPED
    assert flow.messages(handler) == []
    assert 'id="corrections"' not in client.get("/desk/").text


def test_send_and_drop_ask_first_and_a_post_without_the_answer_changes_nothing(pending) -> None:
    client, csrf, correction, engine, handler, _ = pending
    for action, question in (
        ("send", "to every editor who had the column? It cannot be taken back."),
        ("drop", "? Editors are not told."),
    ):
        path = f"/desk/corrections/{correction.id}/{action}"
        asked = client.post(path, data={"csrf": csrf}, headers=SAME)
        assert asked.status_code == 200, asked.text
        assert "Please confirm" in asked.text and question in asked.text
        assert "Walls and bread" in asked.text
        assert f'action="/desk/corrections/{correction.id}/{action}"' in asked.text
        assert 'name="confirm" value="yes"' in asked.text
        # Anything but "yes" is the question again.
        maybe = client.post(path, data={"csrf": csrf, "confirm": "no"}, headers=SAME)
        assert "Please confirm" in maybe.text
    assert listing.show(engine, correction.id)[0].state is rows.CorrectionState.PENDING
    assert flow.messages(handler) == []
    missing = client.post("/desk/corrections/999999/send", data={"csrf": csrf}, headers=SAME)
    assert missing.status_code == 404


def test_without_a_session_or_with_a_forged_token_nothing_happens(pending, project) -> None:
    _, csrf, correction, engine, handler, _ = pending
    stranger = client_for(project)
    for action in ("send", "drop"):
        path = f"/desk/corrections/{correction.id}/{action}"
        answer = stranger.post(
            path, data={"csrf": csrf, "confirm": "yes"}, headers=SAME, follow_redirects=False
        )
        assert answer.status_code == 303 and "/desk/login" in answer.headers["location"]
    author = pending[0]
    for action in ("send", "drop"):
        path = f"/desk/corrections/{correction.id}/{action}"
        forged = author.post(path, data={"csrf": "forged", "confirm": "yes"}, headers=SAME)
        assert forged.status_code == 403
        foreign = author.post(
            path, data={"csrf": csrf, "confirm": "yes"}, headers={"origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
    assert listing.show(engine, correction.id)[0].state is rows.CorrectionState.PENDING
    assert flow.messages(handler) == []
