"""Helpers for the desk's tests: a project with a password set, a logged-in client, the routes."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import httpx
import pytest
from starlette.routing import Mount, Route

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 in its TestClient; httpx itself works the same here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from syndicate import db
from syndicate.desk import queries
from syndicate.runtime import Runtime
from syndicate.web.app import create_app
from tests.conftest import set_setting
from tests.support.web_client import load_settings

SECRET = "test-secret-key-for-the-desk-0123456789"
PASSWORD = "correct horse battery staple"
ORIGIN = "http://testserver"
SAME = {"origin": ORIGIN}


def use_base_url(project: Path, base_url: str = ORIGIN) -> None:
    set_setting(
        project / "settings.toml",
        'base_url = "https://notes.example.com/newsletter"',
        f'base_url = "{base_url}"',
    )


def engine_of(project: Path):
    return db.connect(load_settings(project).database_url)


def client_for(project: Path, **kwargs) -> TestClient:
    return TestClient(create_app(Runtime(load_settings(project)), **kwargs), base_url=ORIGIN)


def field(page: str, name: str = "csrf") -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no {name} field in:\n{page[:3000]}"
    return match.group(1)


def attempt(client: TestClient, password: str) -> httpx.Response:
    """The login form fetched and posted with this password; the answer, whatever it is."""
    page = client.get("/desk/login")
    return client.post(
        "/desk/login",
        data={"csrf": field(page.text), "password": password, "next": "/desk/"},
        headers=SAME,
        follow_redirects=False,
    )


def login(client: TestClient, password: str = PASSWORD) -> str:
    """Logs in; returns the session's CSRF token (the one every desk form carries)."""
    answer = attempt(client, password)
    assert answer.status_code == 303, answer.text
    home = client.get("/desk/")
    assert home.status_code == 200, home.text
    return field(home.text)


def set_password(project: Path, password: str = PASSWORD, *, cheap: bool = True) -> None:
    """`queries.set_password`; then, unless told otherwise, the hash made again at argon2id's
    lowest cost (1 MiB, 1 pass). Its parameters are written in the hash, so the desk checks it
    as it checks a default one, in a millisecond instead of ~0.3 s of CPU (the lockout tests
    check dozens of guesses). `cheap=False` keeps the default cost where timing is the point."""
    engine = engine_of(project)
    queries.set_password(engine, password)
    if cheap:
        from argon2 import PasswordHasher

        hashed = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(password)
        with engine.begin() as conn:
            db.meta.set_meta(conn, queries.PASSWORD_KEY, hashed)


def desk_at_origin(
    project: Path, monkeypatch: pytest.MonkeyPatch, *, password: bool = True
) -> Path:
    """The project's desk at ORIGIN with SECRET in SYNDICATE_SECRET_KEY and, unless told
    otherwise, the desk's password set."""
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", SECRET)
    use_base_url(project)
    if password:
        set_password(project)
    return project


def sent_desk(folder: Path, monkeypatch: pytest.MonkeyPatch, *, password: bool = True) -> Path:
    """The example project after one send (inbound_support.sent_project) at ORIGIN, with the
    fixtures' key in SYNDICATE_SECRET_KEY and, unless told otherwise, the desk's password."""
    from tests.support.inbound import KEY, sent_project

    monkeypatch.setenv("SYNDICATE_SECRET_KEY", KEY)
    project = sent_project(folder)
    use_base_url(project)
    if password:
        set_password(project)
    return project


def desk_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) the desk serves behind its gate, path parameters filled with 1."""
    [mount] = [r for r in client.app.routes if isinstance(r, Mount) and r.path == "/desk"]
    found = []
    for route in mount.routes:
        if not isinstance(route, Route) or route.path == "/login":
            continue
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append((method, "/desk" + path))
    return found
