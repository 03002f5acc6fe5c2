"""The desk's door: the password command, login, sessions, CSRF, origins, rate limits, logout.

Every route behind the gate is found from the app itself, so a route added later is covered too.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from syndicate import db
from syndicate.cli import app as cli_app
from syndicate.desk import auth, queries
from tests.conftest import set_setting
from tests.support.desk import (
    PASSWORD,
    SAME,
    SECRET,
    client_for,
    desk_at_origin,
    desk_routes,
    engine_of,
    field,
    login,
    set_password,
)


@pytest.fixture
def desk_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return desk_at_origin(project, monkeypatch, password=False)


def cli(project: Path, *args: str, input: str | None = None):
    return CliRunner().invoke(
        cli_app, ["--config", str(project / "settings.toml"), *args], input=input
    )


def stored_hash(project: Path) -> str | None:
    return queries.password_hash(engine_of(project))


def test_without_a_password_the_desk_only_says_how_to_set_one(desk_project: Path) -> None:
    client = client_for(desk_project)
    for method, path in [("GET", "/desk/"), ("GET", "/desk/login"), *desk_routes(client)]:
        answer = client.request(method, path, headers=SAME, follow_redirects=False)
        assert answer.status_code == 200, (method, path)
        assert "syndicate desk password" in answer.text
        assert "<nav" not in answer.text and "Log in" not in answer.text
    answer = client.post("/desk/login", data={"password": "x"}, headers=SAME)
    assert "syndicate desk password" in answer.text
    assert client.get("/desk", follow_redirects=False).headers["location"] == "/desk/"


def test_password_command_stores_only_an_argon2_hash(desk_project: Path) -> None:
    result = cli(desk_project, "desk", "password", "--stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "/desk/" in result.output
    stored = stored_hash(desk_project)
    assert stored is not None and stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    with engine_of(desk_project).connect() as conn:
        everything = " ".join(str(v) for v in conn.execute(db.schema.meta.select()).all())
    assert PASSWORD not in everything


def test_password_command_asks_twice_and_refuses_a_mismatch(desk_project: Path) -> None:
    result = cli(desk_project, "desk", "password", input=f"{PASSWORD}\n{PASSWORD}!\n")
    assert result.exit_code == 1
    assert "differ" in str(result.exception)
    assert stored_hash(desk_project) is None
    result = cli(desk_project, "desk", "password", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert stored_hash(desk_project) is not None


def test_password_command_refuses_a_short_one_in_one_line(desk_project: Path) -> None:
    result = cli(desk_project, "desk", "password", "--stdin", input="short\n")
    assert result.exit_code == 1
    assert "at least 10" in str(result.exception)
    assert stored_hash(desk_project) is None


def test_login_sets_a_strict_httponly_cookie_and_opens_the_desk(desk_project: Path) -> None:
    set_password(desk_project)
    client = client_for(desk_project)
    page = client.get("/desk/login")
    answer = client.post(
        "/desk/login",
        data={"csrf": field(page.text), "password": PASSWORD, "next": "/desk/replies"},
        headers=SAME,
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/desk/replies"
    cookie = [c for c in answer.headers.get_list("set-cookie") if c.startswith("syndicate_desk=")]
    assert cookie, answer.headers
    assert "HttpOnly" in cookie[0] and "SameSite=strict" in cookie[0]
    assert "Path=/desk" in cookie[0]
    assert "Secure" not in cookie[0], "http base_url: a Secure cookie would never come back"
    assert "Max-Age=43200" in cookie[0], "[desk] session_hours = 12"
    home = client.get("/desk/")
    assert home.status_code == 200 and "Upcoming sends" in home.text
    assert "script-src 'self'" in home.headers["content-security-policy"]
    assert home.headers["cache-control"] == "no-store"


def test_cookie_is_secure_and_links_carry_the_prefix_behind_an_https_proxy(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", SECRET)
    set_password(project)  # base_url stays https://notes.example.com/newsletter
    client = client_for(project)
    page = client.get("/desk/login")
    assert 'href="/newsletter/desk/static/desk.css"' in page.text
    login_cookie = page.headers["set-cookie"]
    assert "Secure" in login_cookie and "Path=/newsletter/desk" in login_cookie
    answer = client.get("/desk/progress", follow_redirects=False)
    assert answer.headers["location"] == "/newsletter/desk/login?next=/newsletter/desk/progress"


def test_wrong_password_refused_and_attempts_limited(desk_project: Path) -> None:
    set_password(desk_project)
    client = client_for(desk_project)
    page = client.get("/desk/login")
    token = field(page.text)
    for _ in range(5):  # [desk] login_attempts
        answer = client.post(
            "/desk/login", data={"csrf": token, "password": "guess" * 3}, headers=SAME
        )
        assert answer.status_code == 401
        assert "not right" in answer.text
    answer = client.post("/desk/login", data={"csrf": token, "password": PASSWORD}, headers=SAME)
    assert answer.status_code == 429, "over the limit even the right password waits"
    assert int(answer.headers["retry-after"]) > 0
    assert client.get("/desk/", follow_redirects=False).status_code == 303


def test_login_form_needs_its_own_token_and_our_origin(desk_project: Path) -> None:
    set_password(desk_project)
    client = client_for(desk_project)
    client.get("/desk/login")
    forged = client.post("/desk/login", data={"csrf": "forged", "password": PASSWORD}, headers=SAME)
    assert forged.status_code == 403
    page = client.get("/desk/login")
    foreign = client.post(
        "/desk/login",
        data={"csrf": field(page.text), "password": PASSWORD},
        headers={"origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert client.get("/desk/", follow_redirects=False).status_code == 303


def test_login_never_sends_the_browser_elsewhere(desk_project: Path) -> None:
    set_password(desk_project)
    client = client_for(desk_project)
    for wanted in ("https://evil.example/", "//evil.example/desk/", "/desk/\\evil", "/other"):
        client.cookies.clear()
        page = client.get("/desk/login")
        answer = client.post(
            "/desk/login",
            data={"csrf": field(page.text), "password": PASSWORD, "next": wanted},
            headers=SAME,
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/desk/", wanted


def test_every_route_without_a_session_goes_to_login(desk_project: Path) -> None:
    set_password(desk_project)
    client = client_for(desk_project)
    routes = desk_routes(client)
    assert len(routes) >= 3
    for method, path in routes:
        answer = client.request(method, path, headers=SAME, follow_redirects=False)
        assert answer.status_code == 303, (method, path, answer.status_code)
        assert answer.headers["location"].startswith("/desk/login?next="), (method, path)


def test_every_post_refuses_a_forged_or_missing_csrf_token(desk_project: Path) -> None:
    set_password(desk_project)
    client = client_for(desk_project)
    good = login(client)
    posts = [path for method, path in desk_routes(client) if method == "POST"]
    assert "/desk/logout" in posts
    forged = hashlib.sha256(b"not the session's").hexdigest()
    for path in posts:
        for data in ({"csrf": forged}, {}, {"csrf": good[:-1]}):
            answer = client.post(path, data=data, headers=SAME, follow_redirects=False)
            assert answer.status_code == 403, (path, data)
        header = client.post(path, headers={**SAME, "x-csrf-token": forged})
        assert header.status_code == 403, path
    assert client.get("/desk/").status_code == 200, "refusals changed nothing: still logged in"


def test_every_post_from_another_origin_is_refused(desk_project: Path) -> None:
    set_password(desk_project)
    client = client_for(desk_project)
    good = login(client)
    for path in [p for m, p in desk_routes(client) if m == "POST"]:
        for headers in (
            {"origin": "https://evil.example"},
            {"origin": "null"},
            {"sec-fetch-site": "cross-site"},
            {},
        ):
            answer = client.post(path, data={"csrf": good}, headers=headers)
            assert answer.status_code == 403, (path, headers)
    assert client.get("/desk/").status_code == 200


def test_logout_ends_the_session_everywhere(desk_project: Path) -> None:
    set_password(desk_project)
    laptop, phone = client_for(desk_project), client_for(desk_project)
    token = login(laptop)
    login(phone)
    stolen = laptop.cookies.get("syndicate_desk")
    answer = laptop.post("/desk/logout", data={"csrf": token}, headers=SAME)
    assert answer.status_code == 200 and "logged out" in answer.text
    assert laptop.get("/desk/", follow_redirects=False).status_code == 303
    assert phone.get("/desk/", follow_redirects=False).status_code == 303
    replay = client_for(desk_project)
    replay.cookies.set("syndicate_desk", stolen)
    assert replay.get("/desk/", follow_redirects=False).status_code == 303


def test_a_new_password_ends_old_sessions_and_tampered_cookies_fail(desk_project: Path) -> None:
    set_password(desk_project)
    client = client_for(desk_project)
    login(client)
    cookie = client.cookies.get("syndicate_desk")
    tampered = client_for(desk_project)
    tampered.cookies.set("syndicate_desk", cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"))
    assert tampered.get("/desk/", follow_redirects=False).status_code == 303
    set_password(desk_project, "another long password")
    assert client.get("/desk/", follow_redirects=False).status_code == 303
    login(client, "another long password")


def test_htmx_is_served_from_the_package_never_a_cdn(desk_project: Path) -> None:
    set_password(desk_project)
    client = client_for(desk_project)
    packaged = (Path(__file__).parent.parent / "syndicate/desk/static/htmx.min.js").read_bytes()
    served = client.get("/desk/static/htmx.min.js")
    assert served.status_code == 200 and served.content == packaged
    assert 'version:"2.0.11"' in served.text
    assert "javascript" in served.headers["content-type"]
    login(client)
    home = client.get("/desk/").text
    assert '<script src="/desk/static/htmx.min.js"' in home
    assert "https://" not in home.split("</head>")[0]


def test_a_bad_desk_setting_is_one_line_naming_the_key(desk_project: Path) -> None:
    config = desk_project / "settings.toml"
    set_setting(config, 'path = "/desk"', 'path = "desk/"')
    result = cli(desk_project, "desk", "password", "--stdin", input=PASSWORD + "\n")
    assert result.exit_code == 1
    message = str(result.exception)
    assert "desk.path" in message and "must start with '/'" in message and "\n" not in message
    set_setting(config, 'path = "desk/"', 'path = "/desk"')
    set_setting(config, 'origin = ""', 'origin = "notes.example.com"')
    result = cli(desk_project, "desk", "password", "--stdin", input=PASSWORD + "\n")
    assert "desk.origin" in str(result.exception)
    set_setting(config, 'origin = "notes.example.com"', 'origin = ""')
    set_setting(config, "known_device_days = 90", "known_device_days = 0")
    result = cli(desk_project, "desk", "unlock")
    assert result.exit_code == 1
    assert "desk.known_device_days" in str(result.exception)
    assert "\n" not in str(result.exception)


def test_the_desk_path_and_origin_are_configurable(desk_project: Path) -> None:
    config = desk_project / "settings.toml"
    set_setting(config, 'path = "/desk"', 'path = "/author"')
    set_setting(config, 'origin = ""', 'origin = "https://desk.example.com"')
    set_password(desk_project)
    client = client_for(desk_project)
    assert client.get("/desk/", follow_redirects=False).status_code == 404
    page = client.get("/author/login")
    assert page.status_code == 200 and 'action="/author/login"' in page.text
    assert "Secure" in page.headers["set-cookie"], "an https origin gets Secure cookies"
    token = field(page.text)
    ours = client.post(
        "/author/login",
        data={"csrf": token, "password": PASSWORD},
        headers={"origin": "http://testserver"},
    )
    assert ours.status_code == 403, "mail.base_url's origin is not the desk's any more"


def test_a_session_ends_after_its_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = auth.Sessions(b"k" * 32, 12 * 3600)
    cookie = sessions.issue("epoch-1")
    assert sessions.read(cookie, "epoch-1") is not None
    assert sessions.read(cookie, "epoch-2") is None, "a new epoch ends it"
    later = time.time() + 12 * 3600 + 5
    monkeypatch.setattr(time, "time", lambda: later)
    assert sessions.read(cookie, "epoch-1") is None


def test_htmx_polling_after_the_session_ended_sends_the_page_to_login(desk_project: Path) -> None:
    set_password(desk_project)
    client = client_for(desk_project)
    login(client)
    assert client.get("/desk/progress", headers={"HX-Request": "true"}).status_code == 200
    set_password(desk_project, "a brand new password")
    answer = client.get("/desk/progress", headers={"HX-Request": "true"}, follow_redirects=False)
    assert answer.status_code == 204 and answer.headers["hx-redirect"] == "/desk/login"
    assert answer.content == b""
