"""Finding 7 (issue 11): MIME nested ~1,500 levels raised RecursionError, so the message was
retried for ever (exit 75, HTTP 503, a Maildir error on every poll) and never recorded. Now it
is filed once as `malformed`: exit 0, HTTP 200, moved out of the Maildir."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

import pytest

from syndicate import settings as settings_module
from syndicate.inbound.sources import sendgrid
from tests.support.inbound import KEY, cli, edit, replies, sent_fixtures
from tests.test_inbound_sendgrid import PARSE_SECRET, serve


def nested(levels: int = 1500, message_id: str = "<deep-1@evil.example>") -> bytes:
    head = (
        f"From: someone@evil.example\nTo: replies@notes.example.com\nSubject: deep\n"
        f"Message-ID: {message_id}\nMIME-Version: 1.0\n"
    ).encode()
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(levels)
    )
    closing = b"".join(b"\n--b%d--\n" % i for i in reversed(range(levels)))
    return head + opening + b"Content-Type: text/plain\n\nhello\n" + closing


base, project = sent_fixtures("trust-malformed")


def test_a_deeply_nested_message_is_recorded_once_and_never_retried_by_pipe(project: Path) -> None:
    first = cli(project, "inbound", "receive", stdin=nested())
    assert first.returncode == 0, first.stderr.decode()
    again = cli(project, "inbound", "receive", stdin=nested())
    assert again.returncode == 0 and b"already recorded" in again.stderr
    [reply] = replies(project)
    assert (reply["kind"], reply["state"], reply["sender"], reply["subject"]) == (
        "malformed",
        "refused",
        "someone@evil.example",
        "deep",
    )
    assert "nested more than" in reply["reason"]
    data = json.loads(cli(project, "inbound", "classify", "--json", stdin=nested()).stdout)
    assert data["kind"] == "malformed"


def test_inbound_parse_answers_200_and_maildir_moves_it_on(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", KEY)
    monkeypatch.setenv("SYNDICATE_INBOUND_PARSE_SECRET", PARSE_SECRET)
    with serve(lambda: settings_module.load(project / "settings.toml")) as http:
        response = http.post(sendgrid.PATH, files={"email": ("m.eml", nested())})
    assert response.status_code == 200, response.text
    assert response.json()["kind"] == "malformed"
    edit(project / "settings.toml", 'maildir = ""', 'maildir = "Maildir"')
    box = mailbox.Maildir(project / "Maildir", create=True)
    box.add(nested(message_id="<deep-2@evil.example>"))
    assert cli(project, "inbound", "poll").returncode == 0
    assert len(box) == 0 and len(box.get_folder("processed")) == 1
    assert sorted(r["kind"] for r in replies(project)) == ["malformed", "malformed"]
