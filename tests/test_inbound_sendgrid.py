"""SendGrid Inbound Parse: both modes posted as multipart/form-data over HTTP to the routes from
syndicate.inbound.sources.sendgrid, served by uvicorn on 127.0.0.1 in a minimal Starlette app
(web/app.py mounts the same routes)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from syndicate import settings as settings_module
from syndicate.inbound.sources import sendgrid
from syndicate.runtime import Runtime
from syndicate.web.app import create_app
from tests.support.inbound import KEY, edit, fixture, replies, sent_project
from tests.support.web import serving

PARSE_SECRET = "inbound-parse-test-secret"


@pytest.fixture(autouse=True)
def parse_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The password SendGrid's Inbound Parse URL carries (basic auth); every post here sends it."""
    monkeypatch.setenv("SYNDICATE_INBOUND_PARSE_SECRET", PARSE_SECRET)


@contextmanager
def serve(
    loader: Callable[[], settings_module.Settings], *, whole_app: bool = True
) -> Iterator[httpx.Client]:
    """The app `syndicate serve` runs (web.py mounts these routes), served by uvicorn; or the
    routes alone, for a database that is broken from the start (the whole app needs one)."""
    app = (
        create_app(Runtime(loader()))
        if whole_app
        else Starlette(routes=sendgrid.routes(Runtime(loader())))
    )
    with (
        serving(app) as base,
        httpx.Client(base_url=base, timeout=30, auth=("sendgrid", PARSE_SECRET)) as http,
    ):
        yield http


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", KEY)
    project = sent_project(tmp_path / "project")
    with serve(lambda: settings_module.load(project / "settings.toml")) as http:
        yield http, project


def test_raw_mode_the_whole_message_in_the_email_field(client) -> None:
    http, project = client
    envelope = json.dumps(
        {
            "to": ["replies+r1-4-hm54mk4gariuqedp@notes.example.com"],
            "from": "reader.anon@example.com",
        }
    )
    form = {"email": fixture("thunderbird_en.eml").decode(), "envelope": envelope, "SPF": "pass"}
    response = http.post(sendgrid.PATH, data=form)
    assert response.status_code == 200, response.text
    assert response.json()["kind"] == "comment"
    again = http.post(sendgrid.PATH, data=form)  # SendGrid retries: nothing is filed twice
    assert again.json()["duplicate"] is True
    [reply] = replies(project)
    assert (reply["source"], reply["recipient"], reply["state"]) == ("sendgrid", 4, "forwarded")
    assert reply["text"].startswith("I disagree, gently")


def test_parsed_mode_the_message_rebuilt_from_headers_text_and_html(client) -> None:
    http, project = client
    headers = (
        "Received: by mx.sendgrid.net with SMTP id abc; Fri, 27 Nov 2026 13:00:00 +0000\n"
        "From: =?UTF-8?Q?Zo=C3=AB_P=C3=A9rez?= <zoe.perez@example.org>\n"
        "To: replies@notes.example.com\n"
        "Subject: Re: The job is not the work\n"
        "Message-ID: <parsed-mode-1@example.org>\n"
        "In-Reply-To: <syndicate.s1.r2@notes.example.com>\n"
        "Content-Type: multipart/alternative; boundary=xyz\n"
    )
    form = {
        "headers": headers,
        "text": "Merci pour ce texte.\n\nLe 26/11/2026 à 13:00, Jane a écrit :\n> Every job",
        "html": "<p>Merci pour ce texte.</p>",
        "from": "Zoë Pérez <zoe.perez@example.org>",
        "to": "replies@notes.example.com",
        "subject": "Re: The job is not the work",
        "envelope": json.dumps({"to": ["replies+r1-2-ll7etivk2cicffm4@notes.example.com"]}),
        "charsets": json.dumps({"text": "UTF-8", "html": "UTF-8", "subject": "UTF-8"}),
        "attachments": "0",
    }
    response = http.post(sendgrid.PATH, data=form)
    assert response.status_code == 200, response.text
    [reply] = replies(project)
    assert (reply["kind"], reply["recipient"], reply["sender_name"]) == ("comment", 2, "Zoë Pérez")
    assert reply["text"] == "Merci pour ce texte."


def test_a_bounce_and_a_post_without_a_message(client) -> None:
    http, project = client
    response = http.post(sendgrid.PATH, data={"email": fixture("dsn_exim.eml").decode()})
    assert response.json()["kind"] == "bounce"
    empty = http.post(sendgrid.PATH, data={"subject": "nothing else"})
    assert empty.status_code == 400
    assert "neither 'email'" in empty.json()["error"]
    assert [r["kind"] for r in replies(project)] == ["bounce"]


def test_a_database_problem_answers_503_so_sendgrid_retries(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SYNDICATE_DATABASE_URL", f"sqlite:///{tmp_path}/missing/dir/x.db")
    project = Path(__file__).resolve().parent.parent
    loader = lambda: settings_module.load(project / "settings.toml")  # noqa: E731
    with serve(loader, whole_app=False) as http:
        response = http.post(sendgrid.PATH, data={"email": fixture("gmail_en.eml").decode()})
    assert response.status_code == 503


def test_a_message_over_the_limit_is_recorded_and_its_known_sender_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", KEY)
    project = sent_project(tmp_path / "project")
    edit(project / "settings.toml", "max_message_bytes = 10000000", "max_message_bytes = 20000")
    big = fixture("gmail_fr.eml").replace(b"Tr\xc3\xa8s juste.", b"word " * 10_000, 1)
    with serve(lambda: settings_module.load(project / "settings.toml")) as http:
        response = http.post(sendgrid.PATH, data={"email": big.decode()})
    assert response.status_code == 200, response.text
    assert response.json()["kind"] == "refused"
    [reply] = replies(project)
    assert (reply["recipient"], reply["post"]) == (2, 5)
    assert reply["detail"] == "sender told: sent"
    [notice] = (project / "outbox").glob("reply*zoe.perez@example.org.eml")
    text = message_from_bytes(notice.read_bytes(), policy=policy.default).get_content()
    assert "could not be passed on to Jane Marlowe: it was 51 KB" in text
    assert "replies can be at most 20 KB" in text
