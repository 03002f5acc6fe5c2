"""The SendGrid transport against a real HTTP server on 127.0.0.1 standing in for the API.

(The server is ours: SendGrid itself cannot run locally. It answers like the API does: 202 with
X-Message-Id, or an error status with SendGrid's JSON error body.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import select

from syndicate import db, settings
from syndicate.delivery import dispatch
from syndicate.delivery.compose import compose
from syndicate.delivery.mime import as_bytes
from syndicate.delivery.transports import make_transport
from syndicate.delivery.transports.sendgrid import html_key
from syndicate.models import Channel, DeliveryState, RecipientKind
from syndicate.render import EditionCache, make_environment
from syndicate.render import placeholders as ph
from syndicate.runtime import Runtime
from tests.conftest import set_setting
from tests.support.delivery import FakeClock, add_readers, newsletter_send
from tests.support.web import QuietHandler, serving_http


class FakeSendgrid:
    """What the stand-in API was asked, and the answers it is told to give (then 202)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict]] = []  # consumed first; then 202
        self.lock = threading.Lock()
        self.port = 0


def _handler(api: FakeSendgrid) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with api.lock:
                api.requests.append(
                    {"path": self.path, "auth": self.headers["Authorization"], "body": body}
                )
                status, answer = api.answers.pop(0) if api.answers else (202, None)
                number = len(api.requests)
            self.send_response(status)
            if status == 202:
                self.send_header("X-Message-Id", f"sg-{number}")
                self.end_headers()
                return
            data = json.dumps(answer).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSendgrid]:
    server = FakeSendgrid()
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.test-key")
    with serving_http(_handler(server)) as url:
        server.port = int(url.rsplit(":", 1)[1])
        yield server


def use_sendgrid(project: Path, port: int, *, reply_to: str = "shared") -> None:
    config = project / "settings.toml"
    set_setting(config, 'kind = "outbox"', 'kind = "sendgrid"')
    set_setting(config, 'host = "https://api.sendgrid.com"', f'host = "http://127.0.0.1:{port}"')
    set_setting(config, 'reply_to = "shared"', f'reply_to = "{reply_to}"')


def _run(cfg: settings.Settings, engine, send_id: int, clock: FakeClock, **kwargs):
    return dispatch.run_send(
        Runtime(cfg, engine=engine, clock=clock),
        send_id,
        make_transport(cfg),
        backoff=dispatch.Backoff(first=30, longest=600, max_attempts=5),
        **kwargs,
    )


def _smtp_path_message(cfg: settings.Settings, engine, send_id: int, recipient_id: int):
    """The message the SMTP path composes for the same reader, parsed."""
    with engine.connect() as conn:
        recipient = db.recipients.get_recipient(conn, recipient_id)
        post = db.posts.find_post(conn, "latest")
    edition = EditionCache(
        post, Channel.NEWSLETTER, cfg, make_environment(cfg.path(cfg.paths.templates))
    ).for_recipient(recipient)
    sender = dispatch.make_sender(cfg, db.meta.hmac_key(engine, None))
    data = as_bytes(compose(edition, recipient, send_id, sender, db.now()))
    return BytesParser(policy=policy.default).parsebytes(data)


def _substitute(content: str, substitutions: dict[str, str]) -> str:
    """What SendGrid does with `substitutions`: plain replacement of each key."""
    for key in sorted(substitutions, key=len, reverse=True):
        content = content.replace(key, substitutions[key])
    return content


def test_batches_of_1000_carry_each_recipients_parts(project: Path, api: FakeSendgrid) -> None:
    use_sendgrid(project, api.port)
    cfg, engine, send_id = newsletter_send(project)
    emails = add_readers(engine, 1500)
    summary = _run(cfg, engine, send_id, FakeClock())
    assert summary.sent == 1500 and summary.failed == summary.deferred == 0

    assert [len(r["body"]["personalizations"]) for r in api.requests] == [1000, 500]
    assert {r["path"] for r in api.requests} == {"/v3/mail/send"}
    assert {r["auth"] for r in api.requests} == {"Bearer SG.test-key"}
    people = [p for r in api.requests for p in r["body"]["personalizations"]]
    assert [p["to"][0]["email"] for p in people] == emails

    with engine.connect() as conn:
        ids = dict(
            conn.execute(select(db.schema.recipients.c.email, db.schema.recipients.c.id)).all()
        )
        rows = list(db.deliveries.iter_deliveries(conn, send_id))
    assert {r.state for r in rows} == {"sent"}
    assert {r.detail for r in rows} == {"202 accepted sg-1", "202 accepted sg-2"}
    by_email = {r.email: r for r in rows}

    # What reader 3 ("Reader Nummer 3 Ä") gets equals the SMTP path's message.
    body = api.requests[0]["body"]
    person = people[3]
    assert person["to"][0]["name"] == "Reader Nummer 3 Ä"
    assert person["custom_args"] == {
        "syndicate_send": str(send_id),
        "syndicate_recipient": str(ids[emails[3]]),
        "syndicate_delivery": str(by_email[emails[3]].id),
    }
    assert person["headers"]["Message-ID"] == by_email[emails[3]].message_id
    assert person["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Reply-To" not in person["headers"]  # reserved in personalizations
    text = _substitute(body["content"][0]["value"], person["substitutions"])
    html = _substitute(body["content"][1]["value"], person["substitutions"])
    assert "%%" not in text and "%%" not in html
    smtp_msg = _smtp_path_message(cfg, engine, send_id, ids[emails[3]])
    for kind, content in (("plain", text), ("html", html)):
        expected = smtp_msg.get_body((kind,)).get_content().replace("\r\n", "\n")
        assert content.rstrip("\n") == expected.rstrip("\n")
    assert person["substitutions"][html_key(ph.NAME)] == "Reader Nummer 3 Ä"
    assert person["substitutions"][ph.UNSUBSCRIBE_URL] in person["headers"]["List-Unsubscribe"]
    # Reply-To names the send (recipient 0): the reader is found by the reply's From.
    assert body["reply_to"]["email"].startswith(f"replies+r{send_id}-0-")


def test_html_values_are_escaped_per_personalization(project: Path, api: FakeSendgrid) -> None:
    use_sendgrid(project, api.port)
    cfg, engine, send_id = newsletter_send(project)
    with engine.begin() as conn:
        db.recipients.upsert_recipient(
            conn, RecipientKind.READER, "tom&jerry@example.org", 'Tom <b>"T"</b> & Co', {}
        )
    assert _run(cfg, engine, send_id, FakeClock()).sent == 1
    [request] = api.requests
    person = request["body"]["personalizations"][0]
    html = _substitute(request["body"]["content"][1]["value"], person["substitutions"])
    text = _substitute(request["body"]["content"][0]["value"], person["substitutions"])
    assert "tom&amp;jerry@example.org" in html and "tom&jerry" not in html
    assert "tom&jerry@example.org" in text
    assert (
        person["substitutions"][html_key(ph.NAME)]
        == "Tom &lt;b&gt;&quot;T&quot;&lt;/b&gt; &amp; Co"
    )
    with engine.connect() as conn:
        tom = conn.execute(
            select(db.schema.recipients.c.id).where(
                db.schema.recipients.c.email == "tom&jerry@example.org"
            )
        ).scalar_one()
    smtp_html = _smtp_path_message(cfg, engine, send_id, tom).get_body(("html",)).get_content()
    assert html.rstrip("\n") == smtp_html.replace("\r\n", "\n").rstrip("\n")


def test_429_and_5xx_pause_the_send_and_are_retried_after_back_off_4xx_fails(
    project: Path, api: FakeSendgrid
) -> None:
    use_sendgrid(project, api.port)
    set_setting(project / "settings.toml", "batch_size = 1000", "batch_size = 10")
    cfg, engine, send_id = newsletter_send(project)
    add_readers(engine, 30)
    clock = FakeClock()

    # Rate-limited on the second request: the send stops there instead of hammering the API.
    api.answers += [(202, {}), (429, {"errors": [{"message": "too many requests"}]})]
    first = _run(cfg, engine, send_id, clock)
    assert (first.sent, first.deferred) == (10, 10)
    with engine.connect() as conn:
        counts = db.deliveries.delivery_counts(conn, send_id)
        deferred = [
            r for r in db.deliveries.iter_deliveries(conn, send_id) if r.state == "deferred"
        ]
    assert counts == {"sent": 10, "deferred": 10, "pending": 10}
    assert {r.detail for r in deferred} == {"SendGrid API 429: request: too many requests"}
    assert all(db.as_utc(r.next_attempt_at) > clock.now() for r in deferred)

    api.answers.append((503, {"errors": [{"message": "unavailable", "field": None}]}))
    second = _run(cfg, engine, send_id, clock)  # the API is down: nothing more goes
    assert (second.sent, second.deferred) == (0, 20)

    # Later: the first retry is refused as a bad request (fails, bounces nobody), the next goes.
    api.answers.append((400, {"errors": [{"message": "Invalid type.", "field": "content"}]}))
    third = _run(cfg, engine, send_id, clock, wait_for_retries=60)
    assert clock.slept == [pytest.approx(30)]
    assert (third.sent, third.failed, third.deferred) == (10, 10, 0)
    with engine.connect() as conn:
        rows = list(db.deliveries.iter_deliveries(conn, send_id))
        statuses = set(conn.execute(select(db.schema.recipients.c.status)).scalars())
        assert db.sends.get_send(conn, send_id).state == "done"
    failed = [r for r in rows if r.state == DeliveryState.FAILED]
    assert {r.detail for r in failed} == {"SendGrid API 400: content: Invalid type."}
    assert statuses == {"active"}  # a refused request bounces nobody
    assert len(api.requests) == 5


def test_per_recipient_reply_to_sends_one_request_each(project: Path, api: FakeSendgrid) -> None:
    use_sendgrid(project, api.port, reply_to="per_recipient")
    cfg, engine, send_id = newsletter_send(project)
    emails = add_readers(engine, 3)
    assert _run(cfg, engine, send_id, FakeClock()).sent == 3
    assert [len(r["body"]["personalizations"]) for r in api.requests] == [1, 1, 1]
    with engine.connect() as conn:
        ids = [
            conn.execute(
                select(db.schema.recipients.c.id).where(db.schema.recipients.c.email == e)
            ).scalar_one()
            for e in emails
        ]
    replies = [r["body"]["reply_to"]["email"] for r in api.requests]
    assert [a.split("+")[1].split("-")[:2] for a in replies] == [
        [f"r{send_id}", str(i)] for i in ids
    ]


def test_missing_api_key_is_a_clear_error(project: Path, monkeypatch) -> None:
    use_sendgrid(project, 9)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    cfg, engine, send_id = newsletter_send(project)
    add_readers(engine, 2)
    summary = _run(cfg, engine, send_id, FakeClock())
    assert "set the environment variable $SENDGRID_API_KEY" in summary.error


def test_unreachable_api_defers(project: Path, monkeypatch) -> None:
    use_sendgrid(project, 9)
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.x")
    cfg, engine, send_id = newsletter_send(project)
    add_readers(engine, 2)
    clock = FakeClock()
    summary = _run(cfg, engine, send_id, clock)
    assert summary.deferred == 2 and summary.sent == 0
    with engine.connect() as conn:
        details = {r.detail[:11] for r in db.deliveries.iter_deliveries(conn, send_id)}
    assert details == {"connection:"}
