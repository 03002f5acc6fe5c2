"""The replies inbox on the desk: real replies filed by the inbound pipeline from real messages,
read and unread as `syndicate replies read` sets them, the original shown as text, and an answer
that leaves through the configured transport threaded under the reader's message."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest

from syndicate import db
from syndicate.inbound import pipeline
from syndicate.runtime import Runtime
from tests.support.desk import SAME, client_for, login, sent_desk, set_password
from tests.support.inbound import cli, edit, fixture, load, replies, signed_ids
from tests.test_replies_wordpress import APP_PASSWORD, wordpress  # noqa: F401 (the fixture)


@pytest.fixture
def desk_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example project after one send, with a reader's comment, an editor's answer and a
    stranger's message filed."""
    project = sent_desk(tmp_path / "project", monkeypatch, password=False)
    settings, engine, key = load(project)
    for name in ("gmail_en.eml", "editor_reply.eml", "stranger.eml", "dsn_postfix.eml"):
        pipeline.process(
            Runtime(settings, engine=engine, key=key),
            signed_ids(project, fixture(name)),
            source="test",
        )
    set_password(project)
    return project


def by_kind(project: Path) -> dict[str, dict]:
    return {row["kind"]: row for row in replies(project)}


def test_inbox_by_kind_post_and_read_state(desk_project: Path) -> None:
    client = client_for(desk_project)
    login(client)
    rows = by_kind(desk_project)
    assert {"comment", "editor_response", "bounce"} <= set(rows)
    everything = client.get("/desk/replies").text
    for row in rows.values():
        assert f'href="/desk/replies/{row["id"]}"' in everything
    comments = client.get("/desk/replies?kind=comment").text
    assert f'/desk/replies/{rows["comment"]["id"]}"' in comments
    assert f'/desk/replies/{rows["bounce"]["id"]}"' not in comments
    post = rows["comment"]["post"]
    on_post = client.get(f"/desk/replies?post={post}").text
    assert f'/desk/replies/{rows["comment"]["id"]}"' in on_post
    assert client.get("/desk/replies?kind=nonsense").status_code == 200
    home = client.get("/desk/").text
    assert "I spent twenty years" not in home and rows["comment"]["subject"] in home


def test_a_reply_shows_their_words_and_the_original_as_text(desk_project: Path) -> None:
    client = client_for(desk_project)
    login(client)
    comment = by_kind(desk_project)["comment"]
    page = client.get(f"/desk/replies/{comment['id']}").text
    assert "I spent twenty years confusing my job title" in page
    assert "hidden inside it" not in page, "the quoted newsletter is not their words"
    original = client.get(f"/desk/replies/{comment['id']}/original")
    assert original.headers["content-type"].startswith("text/plain")
    assert original.headers["x-content-type-options"] == "nosniff"
    assert b"Message-ID: <CAF3x9q7pY2=gmail-en-0001@mail.gmail.com>" in original.content
    assert client.get("/desk/replies/999999").status_code == 404


def test_read_and_unread_are_what_the_cli_sees(desk_project: Path) -> None:
    client = client_for(desk_project)
    csrf = login(client)
    comment = by_kind(desk_project)["comment"]
    assert comment["read"] is False
    client.post(f"/desk/replies/{comment['id']}/read", data={"csrf": csrf}, headers=SAME)
    assert by_kind(desk_project)["comment"]["read"] is True
    assert f'/desk/replies/{comment["id"]}"' not in client.get("/desk/replies?unread=1").text
    client.post(f"/desk/replies/{comment['id']}/unread", data={"csrf": csrf}, headers=SAME)
    assert by_kind(desk_project)["comment"]["read"] is False
    assert cli(desk_project, "replies", "read", str(comment["id"])).returncode == 0
    page = client.get(f"/desk/replies/{comment['id']}").text
    assert "Mark unread" in page


def test_an_answer_is_threaded_sent_and_recorded(desk_project: Path) -> None:
    client = client_for(desk_project)
    csrf = login(client)
    comment = by_kind(desk_project)["comment"]
    before = set((desk_project / "outbox").glob("*.eml"))
    answer = client.post(
        f"/desk/replies/{comment['id']}/answer",
        data={"csrf": csrf, "text": "Thank you, Margaret.\r\n\r\nJane"},
        headers=SAME,
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    [path] = set((desk_project / "outbox").glob("*.eml")) - before
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    original = "<CAF3x9q7pY2=gmail-en-0001@mail.gmail.com>"
    assert message["To"].addresses[0].addr_spec == "margaret.holloway@example.com"
    assert message["In-Reply-To"] == original
    assert message["References"].split()[-1] == original
    assert len(message["References"].split()) >= 2, "the thread's earlier ids are kept"
    assert str(message["Subject"]).startswith("Re: ")
    assert message["Reply-To"].addresses[0].addr_spec == load(desk_project)[0].author.email
    assert "Thank you, Margaret." in message.get_content()
    page = client.get(answer.headers["location"]).text
    assert "Your answer was sent" in page
    assert message["Message-ID"].strip().strip("<>") in page
    assert by_kind(desk_project)["comment"]["read"] is True
    # Kept as a row of reply_answers, not JSON in meta.
    engine = load(desk_project)[1]
    with engine.connect() as conn:
        [kept] = db.answers.answers_to(conn, comment["id"])
        assert db.meta.get_meta(conn, f"desk_answers:{comment['id']}") is None
    assert (kept.to_address, kept.message_id) == (
        "margaret.holloway@example.com",
        message["Message-ID"],
    )
    assert kept.body == "Thank you, Margaret.\n\nJane"


def test_machines_are_not_answered_and_empty_answers_are_refused(desk_project: Path) -> None:
    client = client_for(desk_project)
    csrf = login(client)
    rows = by_kind(desk_project)
    before = set((desk_project / "outbox").glob("*.eml"))
    bounce = client.post(
        f"/desk/replies/{rows['bounce']['id']}/answer",
        data={"csrf": csrf, "text": "hello"},
        headers=SAME,
    )
    assert bounce.status_code == 400 and "is not answered" in bounce.text
    empty = client.post(
        f"/desk/replies/{rows['comment']['id']}/answer",
        data={"csrf": csrf, "text": "  \r\n "},
        headers=SAME,
    )
    assert empty.status_code == 400 and "nothing was sent" in empty.text
    assert set((desk_project / "outbox").glob("*.eml")) == before


def test_hostile_words_are_shown_not_run(desk_project: Path) -> None:
    settings, engine, key = load(desk_project)
    raw = fixture("stranger.eml").replace(
        b"Subject:", b"Subject: <script>alert(1)</script> \r\nX-Old-Subject:", 1
    )
    raw = raw.replace(b"Message-ID: <", b"Message-ID: <evil.", 1)
    hostile = raw + b"\r\n<script>alert(3)</script>\r\n<img src=x onerror=alert(2)>\r\n"
    pipeline.process(Runtime(settings, engine=engine, key=key), hostile, source="test")
    client = client_for(desk_project)
    login(client)
    newest = replies(desk_project)[0]
    page = client.get(f"/desk/replies/{newest['id']}").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    assert "<img src=x" not in page
    # The reader's own words: shown as text by the runtime's environment (autoescaped).
    assert "<script>alert(3)" not in page and "&lt;script&gt;alert(3)&lt;/script&gt;" in page
    listing = client.get("/desk/replies").text
    assert "<script>alert(1)" not in listing


def test_a_comment_is_published_to_wordpress_as_replies_push_does(
    desk_project: Path,
    wordpress,  # noqa: F811 (the fixture from test_replies_wordpress)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, received = wordpress
    config = desk_project / "settings.toml"
    edit(config, 'url = ""\n# The WordPress user', f'url = "{url}"\n# The WordPress user')
    edit(
        config,
        'username = ""\n# Name of the environment variable holding the WordPress',
        'username = "jane"\n# Name of the environment variable holding the WordPress',
    )
    client = client_for(desk_project)
    csrf = login(client)
    rows = by_kind(desk_project)
    comment = rows["comment"]["id"]
    assert "Publish to WordPress" in client.get(f"/desk/replies/{comment}").text
    refused = client.post(f"/desk/replies/{comment}/publish", data={"csrf": csrf}, headers=SAME)
    assert refused.status_code == 400 and "SYNDICATE_WORDPRESS_PASSWORD" in refused.text
    monkeypatch.setenv("SYNDICATE_WORDPRESS_PASSWORD", APP_PASSWORD)
    done = client.post(f"/desk/replies/{comment}/publish", data={"csrf": csrf}, headers=SAME)
    assert done.status_code == 200 and "WordPress answered: 1001" in done.text
    [published] = received
    assert published["status"] == "hold" and published["post"] == 42
    editor = rows["editor_response"]["id"]
    assert "Publish to WordPress" not in client.get(f"/desk/replies/{editor}").text
    other = client.post(f"/desk/replies/{editor}/publish", data={"csrf": csrf}, headers=SAME)
    assert other.status_code == 400 and len(received) == 1
