"""PostgreSQL refuses a NUL in text (SQLite stores it): outside text is cleaned where it comes in,
so a hostile CSV line or form field can neither stop a send nor answer 500.

Runs on PostgreSQL whichever database the suite runs on (the `postgres_url` fixture).
"""

from __future__ import annotations

import base64
import re
import warnings
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette 1.x asks for httpx2 in its TestClient
    from starlette.testclient import TestClient

from syndicate.runtime import Runtime
from syndicate.web.app import create_app
from tests.support.cli import run_cli
from tests.support.inbound import cli_process
from tests.support.web_client import load_settings

HOSTILE_NAME = "Eve\x00\x1b[31m Bcc: victim@example.net"


def names(url: str, table: str, email: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(
            text(f"SELECT name FROM {table} WHERE email = :email"), {"email": email}
        ).scalars()
        result = list(found)
    engine.dispose()
    return result


def test_a_nul_in_a_csv_name_does_not_stop_the_run(postgres_url: str, project: Path) -> None:
    with (project / "subscribers" / "readers.csv").open("a", encoding="utf-8") as readers:
        readers.write(f'eve@example.com,"{HOSTILE_NAME}"\n')
    result = run_cli(project, "run", "--once")
    assert result.returncode == 0, result.stderr
    assert names(postgres_url, "recipients", "eve@example.com") == [
        "Eve [31m Bcc: victim@example.net"
    ]
    assert list((project / "outbox").glob("*eve@example.com.eml"))


def test_a_nul_in_the_subscribe_forms_name_is_not_a_500(
    postgres_url: str, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", "postgres-text-key-at-least-32-bytes-long")
    app = create_app(Runtime(load_settings(project)))
    with TestClient(app, base_url="https://notes.example.com") as client:
        page = client.get("/subscribe")
        match = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert match
        answer = client.post(
            "/subscribe",
            data={"csrf": match.group(1), "email": "eve@example.com", "name": HOSTILE_NAME},
        )
    assert answer.status_code == 200, answer.text
    assert names(postgres_url, "pending_confirmations", "eve@example.com") == [
        "Eve [31m Bcc: victim@example.net"
    ]


def test_a_nul_in_a_replys_words_and_headers_is_filed_not_retried_forever(
    postgres_url: str, project: Path
) -> None:
    # Exit 75 would make the MTA retry the same message for days.
    body = base64.b64encode(b"Thanks!\x00 Hidden\x00 words.\n").decode()
    raw = (
        "From: =?utf-8?b?" + base64.b64encode(b"Ev\x00e").decode() + "?= <eve@example.org>\r\n"
        "To: replies@notes.example.com\r\n"
        "Subject: =?utf-8?q?Re=3A_the=00column?=\r\n"
        "Message-ID: <nul-1@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" + body + "\r\n"
    ).encode()
    result = cli_process(project, "inbound", "receive", stdin=raw)
    assert result.returncode == 0, result.stderr.decode()
    listed = run_cli(project, "replies", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "Hidden" in listed.stdout and "\\u0000" not in listed.stdout
