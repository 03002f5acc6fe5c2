"""Finding 10 (the web points) and the Inbound Parse half of finding 5, each attack as written,
through the ASGI app (httpx via Starlette's TestClient, a real SQLite file, the outbox transport).
"""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

import pytest
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette 1.x asks for httpx2 in its TestClient
    from starlette.testclient import TestClient

from syndicate import db, tokens
from syndicate.audience import subscribers
from syndicate.models import RecipientKind
from syndicate.runtime import Runtime
from syndicate.web.app import create_app
from tests.conftest import set_setting
from tests.support.inbound import fixture
from tests.support.web_client import SigningKey, confirmation_link, events_body, load_settings

SECRET = "trust-web-pages-key-at-least-32-bytes-long"
PARSE_SECRET = "s3cret-parse-password"
BASE = "https://notes.example.com/newsletter"
INBOUND = "/webhooks/sendgrid/inbound"
EVENTS = "/webhooks/sendgrid/events"


@pytest.fixture
def web(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", SECRET)
    monkeypatch.delenv("SYNDICATE_SENDGRID_WEBHOOK_KEY", raising=False)
    monkeypatch.delenv("SYNDICATE_INBOUND_PARSE_SECRET", raising=False)
    return project


def client_for(project: Path) -> TestClient:
    # The public base URL has a path (/newsletter) the reverse proxy strips before the app.
    return TestClient(
        create_app(Runtime(load_settings(project))), base_url="https://notes.example.com"
    )


def engine_of(project: Path):
    return db.connect(load_settings(project).database_url)


def status_of(project: Path, email: str) -> str | None:
    with engine_of(project).connect() as conn:
        rows = db.recipients.recipients_by_email(conn, email)
    return rows[0].status if rows else None


def subscribe(client: TestClient, email: str):
    page = client.get("/subscribe")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/subscribe", data={"csrf": csrf, "email": email, "website": ""})


def reader_token(project: Path, email: str = "margaret.holloway@example.com") -> str:
    settings = load_settings(project)
    engine = engine_of(project)
    subscribers.sync(engine, settings.path(settings.subscribers.readers), RecipientKind.READER)
    with engine.connect() as conn:
        [row] = db.recipients.recipients_by_email(conn, email)
    return tokens.make(SECRET.encode(), "unsubscribe", 7, row.id)


# --- confirmation: a link scanner opens the link, only a person presses the button ---------------


def test_opening_a_confirmation_link_confirms_nobody(web: Path) -> None:
    client = client_for(web)
    assert subscribe(client, "scanned@example.com").status_code == 200
    path = confirmation_link(web, "scanned@example.com").removeprefix(BASE)
    for _ in range(3):  # what a mail provider's link scanner does
        assert client.get(path).status_code == 200
        assert client.head(path).status_code == 200
    assert status_of(web, "scanned@example.com") is None
    page = client.get(path).text
    assert page.count("<button") == 1 and '<form method="post" action="">' in page
    assert client.post(path).status_code == 200
    assert status_of(web, "scanned@example.com") == "active"


# --- the signed event webhook: a recorded post cannot be replayed later --------------------------


def test_a_genuinely_signed_but_old_or_future_event_post_is_refused(
    web: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = SigningKey()
    monkeypatch.setenv("SYNDICATE_SENDGRID_WEBHOOK_KEY", key.public_b64)
    token_owner = "margaret.holloway@example.com"
    reader_token(web)
    body = events_body({"event": "unsubscribe", "email": token_owner, "sg_event_id": "old1"})
    client = client_for(web)
    now = int(time.time())
    for stamp in (now - 11 * 60, now + 11 * 60, 1700000000, "12abc", "-5"):
        answer = client.post(EVENTS, content=body, headers=key.headers(body, str(stamp)))
        assert answer.status_code == 401, stamp
    assert status_of(web, token_owner) == "active"
    recent = client.post(EVENTS, content=body, headers=key.headers(body, str(now - 60)))
    assert recent.status_code == 200 and recent.json()["applied"] == 1
    assert status_of(web, token_owner) == "unsubscribed"


# --- RFC 8058 one-click in either form encoding ---------------------------------------------------


def multipart(fields: dict[str, str], boundary: str = "----onecl1ck") -> tuple[bytes, dict]:
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    body += f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_one_click_sent_as_multipart_form_data_unsubscribes(web: Path) -> None:
    token = reader_token(web)
    client = client_for(web)
    wrong, headers = multipart({"List-Unsubscribe": "Two-Clicks"})
    assert client.post(f"/unsubscribe/{token}", content=wrong, headers=headers).status_code == 400
    broken = client.post(
        f"/unsubscribe/{token}", content=b"--x\r\ngarbage", headers=headers
    )  # a multipart body that does not parse
    assert broken.status_code == 400
    assert status_of(web, "margaret.holloway@example.com") == "active"
    assert client.head(f"/unsubscribe/{token}").status_code == 200
    assert status_of(web, "margaret.holloway@example.com") == "active"
    body, headers = multipart({"List-Unsubscribe": "One-Click"})
    answer = client.post(f"/unsubscribe/{token}", content=body, headers=headers)
    assert answer.status_code == 200 and "You’re unsubscribed" in answer.text
    assert status_of(web, "margaret.holloway@example.com") == "unsubscribed"


def test_one_click_urlencoded_with_or_without_a_content_type(web: Path) -> None:
    client = client_for(web)
    for email in ("margaret.holloway@example.com", "zoe.perez@example.org"):
        token = reader_token(web, email)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if email.startswith("zoe"):
            headers = {}
        answer = client.post(
            f"/unsubscribe/{token}", content=b"List-Unsubscribe=One-Click", headers=headers
        )
        assert answer.status_code == 200, email
        assert status_of(web, email) == "unsubscribed"


# --- security headers on every page; no redirect built from Host ---------------------------------


def test_every_response_carries_the_security_headers(web: Path) -> None:
    client = client_for(web)
    subscribe(client, "headers@example.com")
    confirm = confirmation_link(web, "headers@example.com").removeprefix(BASE)
    token = reader_token(web)
    responses = {
        "form": client.get("/"),
        "subscribe": client.get("/subscribe"),
        "check inbox": subscribe(client, "headers2@example.com"),
        "confirm button": client.get(confirm),
        "forged confirm": client.get("/confirm/forged"),
        "unsubscribe button": client.get(f"/unsubscribe/{token}"),
        "forged unsubscribe": client.post("/unsubscribe/forged", data={"a": "b"}),
        "not found": client.get("/nowhere"),
        "health": client.get("/healthz"),
        "webhook not configured": client.post(EVENTS, content=b"[]"),
        "too large": client.post("/subscribe", content=b"x" * 70_000),
    }
    for name, response in responses.items():
        headers = response.headers
        assert headers["x-frame-options"] == "DENY", name
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["referrer-policy"] == "no-referrer", name
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, name
        assert "unsafe-inline" not in csp and "script-src" not in csp, name
        if headers["content-type"].startswith("text/html"):
            [nonce] = re.findall(r'<style nonce="([^"]+)">', response.text)
            assert f"style-src 'nonce-{nonce}'" in csp, name
            assert "form-action 'self'" in csp, name
            assert headers["cache-control"] == "no-store", name
    assert responses["too large"].status_code == 413


def test_a_server_error_carries_the_security_headers_too(web: Path) -> None:
    """A handler that fails: the 500 comes from Starlette's ServerErrorMiddleware, which sits
    outside any middleware given to Starlette, so before it carried none of the headers."""

    async def broken(request: Request) -> Response:
        raise RuntimeError("a bug in a handler")

    app = create_app(Runtime(load_settings(web)), [Route("/broken", broken)])
    client = TestClient(app, base_url="https://notes.example.com", raise_server_exceptions=False)
    answer = client.get("/broken")
    assert answer.status_code == 500
    assert "a bug in a handler" not in answer.text
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in answer.headers["content-security-policy"]


def test_a_trailing_slash_never_redirects_to_the_host_header(web: Path) -> None:
    client = client_for(web)
    evil = {"Host": "evil.example"}
    answer = client.get("/subscribe/", headers=evil, follow_redirects=False)
    assert answer.headers["location"] == f"{BASE}/subscribe"  # before: http://evil.example/…
    assert answer.status_code == 308
    for path in ("/unsubscribe/abc/", "/confirm/abc/", "/healthz/", "/webhooks/sendgrid/events/"):
        answer = client.get(path, headers=evil, follow_redirects=False)
        assert "location" not in answer.headers, path
        assert "evil.example" not in answer.text, path


# --- Inbound Parse: only SendGrid, with the password its URL carries ----------------------------


def replies_count(project: Path) -> int:
    with engine_of(project).connect() as conn:
        return conn.execute(select(func.count()).select_from(db.schema.replies)).scalar_one()


def inbound_form() -> dict[str, str]:
    return {"email": fixture("gmail_en.eml").decode(), "envelope": '{"to": []}'}


def test_inbound_parse_without_a_configured_secret_answers_503(web: Path) -> None:
    answer = client_for(web).post(INBOUND, data=inbound_form(), auth=("sendgrid", "anything"))
    assert answer.status_code == 503 and replies_count(web) == 0


def test_inbound_parse_refuses_strangers_and_files_for_sendgrid(
    web: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_INBOUND_PARSE_SECRET", PARSE_SECRET)
    client = client_for(web)
    for auth in (None, ("sendgrid", "guess"), ("sendgrid", PARSE_SECRET[:-1]), ("", "")):
        answer = client.post(INBOUND, data=inbound_form(), auth=auth)
        assert answer.status_code == 401, auth
        assert answer.headers["www-authenticate"].startswith("Basic")
        assert answer.json() == {"error": "authentication required"}
    bearer = client.post(
        INBOUND, data=inbound_form(), headers={"Authorization": f"Bearer {PARSE_SECRET}"}
    )
    assert bearer.status_code == 401
    assert replies_count(web) == 0
    answer = client.post(INBOUND, data=inbound_form(), auth=("sendgrid", PARSE_SECRET))
    assert answer.status_code == 200, answer.text
    assert replies_count(web) == 1


def test_inbound_parse_form_has_a_field_cap(web: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATE_INBOUND_PARSE_SECRET", PARSE_SECRET)
    form = {**inbound_form(), **{f"extra{n}": "x" for n in range(150)}}
    answer = client_for(web).post(INBOUND, data=form, auth=("sendgrid", PARSE_SECRET))
    assert answer.status_code == 400
    assert replies_count(web) == 0


def test_the_secure_cookie_follows_base_url_not_a_forwarded_header(web: Path) -> None:
    """Behind a TLS-terminating proxy the app sees plain http; the cookie is still Secure."""
    behind_proxy = TestClient(
        create_app(Runtime(load_settings(web))), base_url="http://127.0.0.1:8000"
    )
    assert "secure" in behind_proxy.get("/subscribe").headers["set-cookie"].lower()
    set_setting(web / "settings.toml", f'base_url = "{BASE}"', 'base_url = "http://localhost"')
    plain = TestClient(create_app(Runtime(load_settings(web))), base_url="https://localhost")
    assert "secure" not in plain.get("/subscribe").headers["set-cookie"].lower()


def test_inbound_parse_form_has_a_file_cap(web: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATE_INBOUND_PARSE_SECRET", PARSE_SECRET)
    files = {f"attachment{n}": (f"a{n}.txt", b"x") for n in range(101)}
    client = client_for(web)
    answer = client.post(INBOUND, data=inbound_form(), files=files, auth=("sendgrid", PARSE_SECRET))
    assert answer.status_code == 400
    assert replies_count(web) == 0
    files.pop("attachment100")
    answer = client.post(INBOUND, data=inbound_form(), files=files, auth=("sendgrid", PARSE_SECRET))
    assert answer.status_code == 200 and replies_count(web) == 1
