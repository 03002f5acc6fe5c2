"""The web app through httpx (Starlette's TestClient): every route, forged and replayed input."""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select
from starlette.responses import PlainTextResponse
from starlette.routing import Route

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 in its TestClient; httpx itself works the same here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from syndicate import db, tokens
from syndicate.audience import optin, subscribers
from syndicate.models import RecipientKind
from syndicate.runtime import Runtime
from syndicate.web.app import create_app
from tests.conftest import free_port, set_setting
from tests.support.web_client import (
    SigningKey,
    confirmation_link,
    events_body,
    load_settings,
    outbox_messages,
    without_nonce,
)

SECRET = "test-secret-key-for-the-web-app-0123"


@pytest.fixture
def web_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", SECRET)
    monkeypatch.delenv("SYNDICATE_SENDGRID_WEBHOOK_KEY", raising=False)
    set_setting(
        project / "settings.toml",
        'base_url = "https://notes.example.com/newsletter"',
        'base_url = "http://testserver"',
    )
    return project


def client_for(project: Path, **kwargs) -> TestClient:
    return TestClient(create_app(Runtime(load_settings(project)), **kwargs))


def engine_of(project: Path):
    return db.connect(load_settings(project).database_url)


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF field in the form"
    return match.group(1)


def subscribe(client: TestClient, email: str, name: str = "", **extra: str):
    form = client.get("/subscribe")
    assert form.status_code == 200
    data = {"csrf": csrf_of(form.text), "email": email, "name": name, "website": "", **extra}
    return client.post("/subscribe", data=data)


def status_of(project: Path, email: str) -> str | None:
    with engine_of(project).connect() as conn:
        return conn.execute(
            select(db.schema.recipients.c.status).where(
                db.schema.recipients.c.email_key == email.lower(),
                db.schema.recipients.c.kind == "reader",
            )
        ).scalar_one_or_none()


def test_subscribe_page_is_an_accessible_form_with_csrf_and_honeypot(web_project: Path) -> None:
    client = client_for(web_project)
    for path in ("/", "/subscribe"):
        page = client.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<html lang="en">' in page.text
        assert '<label for="email">' in page.text and 'id="email"' in page.text
        assert 'name="website"' in page.text and 'tabindex="-1"' in page.text
        assert csrf_of(page.text)
        assert "syndicate_csrf" in page.headers["set-cookie"]


def test_double_opt_in_through_the_outbox(web_project: Path) -> None:
    client = client_for(web_project)
    answer = subscribe(client, "New.Reader@Example.com", "Nora Reader")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert status_of(web_project, "new.reader@example.com") is None, "active before confirming"

    [mail] = outbox_messages(web_project, "New.Reader@example.com")
    assert mail["Subject"] == "Confirm your subscription to Notes from the Margin"
    assert mail["Auto-Submitted"] == "auto-generated"
    html = mail.get_body(preferencelist=("html",)).get_content()
    link = confirmation_link(web_project, "New.Reader@example.com")
    assert link in html and link.startswith("http://testserver/confirm/")

    path = link.removeprefix("http://testserver")
    button = client.get(path)
    assert button.status_code == 200 and button.text.count("<button") == 1
    assert "new.reader@example.com" in button.text.lower()
    assert status_of(web_project, "new.reader@example.com") is None, "a GET must not confirm"
    confirmed = client.post(path)
    assert confirmed.status_code == 200 and "You’re subscribed" in confirmed.text
    with engine_of(web_project).connect() as conn:
        [row] = [
            r
            for r in db.recipients.list_recipients(conn)
            if r.email_key == "new.reader@example.com"
        ]
    assert (row.status, row.source, row.name) == ("active", "web", "Nora Reader")
    assert row.confirmed_at is not None

    again = client.post(path)
    assert again.status_code == 200 and "Already confirmed" in again.text
    assert "Already confirmed" in client.get(path).text


def test_known_and_unknown_addresses_get_the_same_answer(web_project: Path) -> None:
    engine = engine_of(web_project)
    settings = load_settings(web_project)
    subscribers.sync(engine, settings.path(settings.subscribers.readers), RecipientKind.READER)
    client = client_for(web_project)
    known = subscribe(client, "margaret.holloway@example.com")
    unknown = subscribe(client, "someone.new@example.com")
    assert known.status_code == unknown.status_code == 200
    assert without_nonce(known.text) == without_nonce(unknown.text)


def test_missing_or_wrong_csrf_token_is_refused(web_project: Path) -> None:
    client = client_for(web_project)
    client.get("/subscribe")
    no_token = client.post("/subscribe", data={"email": "a@example.com"})
    assert no_token.status_code == 403 and "did not come from this site" in no_token.text
    forged = client.post("/subscribe", data={"email": "a@example.com", "csrf": "abc.def.ghi"})
    assert forged.status_code == 403
    # A genuine token from one browser does not work with another browser's cookie.
    token = csrf_of(client_for(web_project).get("/subscribe").text)
    crossed = client.post("/subscribe", data={"email": "a@example.com", "csrf": token})
    assert crossed.status_code == 403
    assert outbox_messages(web_project, "a@example.com") == []


def test_honeypot_gets_the_normal_answer_but_nothing_happens(web_project: Path) -> None:
    client = client_for(web_project)
    answer = subscribe(client, "bot@example.com", website="http://spam.example")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert outbox_messages(web_project, "bot@example.com") == []


def test_a_broken_address_is_explained_and_the_form_kept(web_project: Path) -> None:
    client = client_for(web_project)
    answer = subscribe(client, "not an address", "Kim")
    assert answer.status_code == 400
    assert "does not look like an email address" in answer.text
    assert 'value="Kim"' in answer.text and 'aria-invalid="true"' in answer.text


def test_a_flood_from_one_address_is_rate_limited(web_project: Path) -> None:
    set_setting(web_project / "settings.toml", "rate_limit = 5", "rate_limit = 3")
    set_setting(web_project / "settings.toml", "trusted_proxies = 0", "trusted_proxies = 1")
    client = client_for(web_project)
    token = csrf_of(client.get("/subscribe").text)
    codes = []
    for n in range(8):
        answer = client.post(
            "/subscribe",
            data={"csrf": token, "email": f"flood{n}@example.com"},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        codes.append(answer.status_code)
    assert codes == [200, 200, 200, 429, 429, 429, 429, 429]
    assert int(answer.headers["Retry-After"]) > 0
    assert len(list((web_project / "outbox").glob("*.eml"))) == 3
    other = client.post(
        "/subscribe",
        data={"csrf": token, "email": "calm@example.com"},
        headers={"X-Forwarded-For": "198.51.100.7"},
    )
    assert other.status_code == 200


def test_forged_altered_and_expired_confirmation_links(web_project: Path) -> None:
    client = client_for(web_project)
    subscribe(client, "later@example.com")
    link = confirmation_link(web_project, "later@example.com").removeprefix("http://testserver")
    altered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    nonce = "0" * 16  # the right id with the wrong nonce, signed with the right key
    for bad in (
        altered,
        "/confirm/not-a-token",
        "/confirm/" + optin.confirm_token(b"other key", 1, nonce),
        "/confirm/" + optin.confirm_token(SECRET.encode(), 1, nonce),
    ):
        for method in (client.get, client.post):
            answer = method(bad)
            assert answer.status_code == 400 and "not valid" in answer.text
    assert status_of(web_project, "later@example.com") is None

    class LongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 3 * 24 * 3600

    old = URLSafeTimedSerializer(SECRET.encode(), salt=optin.CONFIRM_SALT, signer=LongAgo)
    with engine_of(web_project).connect() as conn:
        real_nonce = db.recipients.get_pending_confirmation(conn, 1).nonce
    for method in (client.get, client.post):
        expired = method(f"/confirm/{old.dumps([1, real_nonce])}")
        assert expired.status_code == 410 and "expired" in expired.text
    assert status_of(web_project, "later@example.com") is None


def _reader(project: Path, email: str = "margaret.holloway@example.com") -> int:
    engine = engine_of(project)
    settings = load_settings(project)
    subscribers.sync(engine, settings.path(settings.subscribers.readers), RecipientKind.READER)
    with engine.connect() as conn:
        [row] = db.recipients.recipients_by_email(conn, email)
    return row.id


def test_unsubscribe_page_shows_one_button_and_get_changes_nothing(web_project: Path) -> None:
    rid = _reader(web_project)
    token = tokens.make(SECRET.encode(), "unsubscribe", 7, rid)
    client = client_for(web_project)
    page = client.get(f"/unsubscribe/{token}")
    assert page.status_code == 200
    assert page.text.count("<button") == 1 and "margaret.holloway@example.com" in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert status_of(web_project, "margaret.holloway@example.com") == "active"


def test_one_click_post_unsubscribes_at_once(web_project: Path) -> None:
    rid = _reader(web_project)
    token = tokens.make(SECRET.encode(), "unsubscribe", 7, rid)
    client = client_for(web_project)
    empty = client.post(f"/unsubscribe/{token}", content=b"")
    assert empty.status_code == 400
    assert status_of(web_project, "margaret.holloway@example.com") == "active"
    answer = client.post(
        f"/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200 and "You’re unsubscribed" in answer.text
    with engine_of(web_project).connect() as conn:
        row = db.recipients.recipient_row(conn, rid)
    assert row.status == "unsubscribed" and "one-click (send 7)" in row.unsubscribe_reason
    # Clicking twice is harmless; the page then says so instead of offering the button again.
    assert client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).is_success
    later = client.get(f"/unsubscribe/{token}")
    assert "already unsubscribed" in later.text and "<button" not in later.text


def test_forged_or_altered_unsubscribe_tokens_change_nothing(web_project: Path) -> None:
    rid = _reader(web_project)
    key = SECRET.encode()
    genuine = tokens.make(key, "unsubscribe", 7, rid)
    forged = [
        genuine[:-1] + ("a" if genuine[-1] != "a" else "b"),
        tokens.make(b"someone else's key", "unsubscribe", 7, rid),
        tokens.make(key, "reply", 7, rid),  # a reply token is not an unsubscribe token
        f"u7-{rid}-aaaaaaaaaaaaaaaa",
        "nonsense",
    ]
    client = client_for(web_project)
    for token in forged:
        page = client.get(f"/unsubscribe/{token}")
        assert page.status_code == 400 and "not valid" in page.text and "<button" not in page.text
        post = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
        assert post.status_code == 400 and "nothing was" in post.text
    assert status_of(web_project, "margaret.holloway@example.com") == "active"


def test_only_a_new_confirmed_opt_in_brings_an_unsubscribed_reader_back(web_project: Path) -> None:
    rid = _reader(web_project)
    client = client_for(web_project)
    token = tokens.make(SECRET.encode(), "unsubscribe", 7, rid)
    client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    settings = load_settings(web_project)
    # Read again (forced: the file is unchanged since the fixture synced it): still listed there,
    # the reader stays unsubscribed.
    report = subscribers.sync(
        engine_of(web_project),
        settings.path(settings.subscribers.readers),
        RecipientKind.READER,
        force=True,
    )
    assert report.kept_suppressed == 1
    assert status_of(web_project, "margaret.holloway@example.com") == "unsubscribed"
    subscribe(client, "Margaret.Holloway@example.com")
    assert status_of(web_project, "margaret.holloway@example.com") == "unsubscribed"
    link = confirmation_link(web_project, "Margaret.Holloway@example.com")
    client.post(link.removeprefix("http://testserver"))
    assert status_of(web_project, "margaret.holloway@example.com") == "active"


# --- SendGrid event webhook ---------------------------------------------------------------------


@pytest.fixture
def signing_key(monkeypatch: pytest.MonkeyPatch) -> SigningKey:
    key = SigningKey()
    monkeypatch.setenv("SYNDICATE_SENDGRID_WEBHOOK_KEY", key.public_b64)
    return key


WEBHOOK = "/webhooks/sendgrid/events"


def test_webhook_without_configured_key_answers_503(web_project: Path) -> None:
    answer = client_for(web_project).post(WEBHOOK, content=events_body({"event": "bounce"}))
    assert answer.status_code == 503


def test_webhook_rejects_missing_and_bad_signatures(
    web_project: Path, signing_key: SigningKey
) -> None:
    rid = _reader(web_project)
    body = events_body(
        {
            "event": "spamreport",
            "email": "margaret.holloway@example.com",
            "sg_event_id": "e1",
            "recipient_id": str(rid),
            "send_id": "3",
        }
    )
    client = client_for(web_project)
    assert client.post(WEBHOOK, content=body).status_code == 401
    impostor = SigningKey()
    assert client.post(WEBHOOK, content=body, headers=impostor.headers(body)).status_code == 401
    headers = signing_key.headers(body)
    altered = body.replace(b"spamreport", b"unsubscribe")
    assert client.post(WEBHOOK, content=altered, headers=headers).status_code == 401
    garbage = dict(headers, **{"X-Twilio-Email-Event-Webhook-Signature": "%%%not base64"})
    assert client.post(WEBHOOK, content=body, headers=garbage).status_code == 401
    retimed = dict(headers, **{"X-Twilio-Email-Event-Webhook-Timestamp": "1700000001"})
    assert client.post(WEBHOOK, content=body, headers=retimed).status_code == 401
    assert status_of(web_project, "margaret.holloway@example.com") == "active"


def test_webhook_applies_events_once_and_ignores_replays(
    web_project: Path, signing_key: SigningKey
) -> None:
    engine = engine_of(web_project)
    settings = load_settings(web_project)
    subscribers.sync(engine, settings.path(settings.subscribers.readers), RecipientKind.READER)
    with engine.connect() as conn:
        ids = {r.email_key: r.id for r in db.recipients.list_recipients(conn, RecipientKind.READER)}
    body = events_body(
        {"event": "delivered", "email": "zoe.perez@example.org", "sg_event_id": "d1"},
        {
            "event": "bounce",
            "type": "blocked",
            "email": "zoe.perez@example.org",
            "sg_event_id": "b0",
        },
        {
            "event": "bounce",
            "type": "bounce",
            "email": "zoe.perez@example.org",
            "reason": "550 5.1.1 no such user",
            "sg_event_id": "b1",
            "send_id": "3",
            "recipient_id": str(ids["zoe.perez@example.org"]),
        },
        {"event": "spamreport", "email": "D.Nakamura@example.net", "sg_event_id": "s1"},
        {
            "event": "group_unsubscribe",
            "email": "reader.anon@example.com",
            "sg_event_id": "g1",
            "asm_group_id": 1,
            "recipient_id": "999999",
        },
        {"event": "unsubscribe", "email": "stranger@example.com", "sg_event_id": "u1"},
    )
    client = client_for(web_project)
    first = client.post(WEBHOOK, content=body, headers=signing_key.headers(body))
    assert first.status_code == 200
    assert first.json() == {"applied": 3, "duplicates": 0, "ignored": 2, "unmatched": 1}
    assert status_of(web_project, "zoe.perez@example.org") == "bounced"
    assert status_of(web_project, "d.nakamura@example.net") == "complained"
    assert status_of(web_project, "reader.anon@example.com") == "unsubscribed"
    assert status_of(web_project, "margaret.holloway@example.com") == "active"

    replay = client.post(WEBHOOK, content=body, headers=signing_key.headers(body))
    assert replay.json() == {"applied": 0, "duplicates": 4, "ignored": 2, "unmatched": 0}
    with engine.connect() as conn:
        row = db.recipients.recipient_row(conn, ids["zoe.perez@example.org"])
    assert row.unsubscribe_reason == "sendgrid bounce (send 3): 550 5.1.1 no such user"


def test_webhook_rejects_a_body_that_is_not_an_event_array(
    web_project: Path, signing_key: SigningKey
) -> None:
    body = b'{"event": "bounce"}'
    answer = client_for(web_project).post(WEBHOOK, content=body, headers=signing_key.headers(body))
    assert answer.status_code == 400


def test_extra_routes_are_mounted(web_project: Path) -> None:
    extra = [Route("/inbound/test", lambda request: PlainTextResponse("inbound"), methods=["POST"])]
    client = client_for(web_project, extra_routes=extra)
    assert client.post("/inbound/test").text == "inbound"
    assert client.get("/healthz").json() == {"ok": True}


def _use_smtp(project: Path, port: int) -> None:
    config = project / "settings.toml"
    set_setting(config, 'kind = "outbox"', 'kind = "smtp"')
    set_setting(config, 'host = "localhost"\nport = 587', f'host = "127.0.0.1"\nport = {port}')
    set_setting(config, 'security = "starttls"', 'security = "none"')


def test_confirmation_goes_through_the_configured_smtp_transport(web_project: Path, smtp_server):
    controller, handler = smtp_server
    _use_smtp(web_project, controller.port)
    answer = subscribe(client_for(web_project), "smtp.reader@example.com")
    assert answer.status_code == 200
    [received] = handler.messages
    assert received.rcpt_tos == ["smtp.reader@example.com"]
    assert b"/confirm/" in received.data


def test_a_transport_that_cannot_send_is_reported_honestly(web_project: Path) -> None:
    _use_smtp(web_project, free_port())  # nothing listens there
    answer = subscribe(client_for(web_project), "unlucky@example.com")
    assert answer.status_code == 503 and "try again" in answer.text
