"""Shared fixtures: a copy of the shipped project in a temporary folder, a real SMTP server, and
the database every test runs on (SQLite files by default; PostgreSQL when selected, see below)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from tests.postgres_support import POSTGRES_ENV, PostgresCluster, on_postgres
from tests.tools import missing

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """The PostgreSQL server named by SYNDICATE_TEST_POSTGRES_URL; missing: fail under CI."""
    admin_url = os.environ.get(POSTGRES_ENV, "")
    if not admin_url:
        missing(f"no PostgreSQL: {POSTGRES_ENV} is not set (.ci/run starts a private server)")
    try:
        cluster = PostgresCluster(admin_url)
    except ImportError:
        missing("the psycopg package is not installed (pip install -e '.[test]')")
        raise
    except Exception as error:
        missing(f"PostgreSQL at {POSTGRES_ENV} does not answer: {error}")
        raise
    PostgresCluster.active = cluster
    yield cluster
    PostgresCluster.active = None
    cluster.close()


@pytest.fixture(scope="session", autouse=True)
def selected_database(request: pytest.FixtureRequest) -> None:
    """On PostgreSQL, the server is reached before any fixture builds a project."""
    if on_postgres():
        request.getfixturevalue("postgres_cluster")


@contextmanager
def postgres_schema(
    cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    schema, url = cluster.new_schema()
    databases_before = len(cluster.databases)
    monkeypatch.setenv("SYNDICATE_DATABASE_URL", url)
    # The crash journal of a server database lives in the state folder: keep it per test.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    try:
        yield url
    finally:
        cluster.drop_schema(schema)
        cluster.drop_databases_since(databases_before)


@pytest.fixture(autouse=True)
def database(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str | None]:
    """Every test starts on an empty database: its own SQLite files (the project's default URL),
    or, on PostgreSQL, its own schema in SYNDICATE_DATABASE_URL, which settings honour and
    subprocesses inherit. Yields that URL on PostgreSQL, None on SQLite."""
    if not on_postgres():
        monkeypatch.delenv("SYNDICATE_DATABASE_URL", raising=False)
        yield None
        return
    cluster = request.getfixturevalue("postgres_cluster")
    with postgres_schema(cluster, monkeypatch, tmp_path) as url:
        yield url


@pytest.fixture
def postgres_url(
    database: str | None,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[str]:
    """A fresh PostgreSQL schema (also in SYNDICATE_DATABASE_URL) whichever database the suite
    runs on, for the tests of PostgreSQL's own behaviour (tests/test_postgres_*.py)."""
    if database is not None:
        yield database
        return
    cluster = request.getfixturevalue("postgres_cluster")
    with postgres_schema(cluster, monkeypatch, tmp_path) as url:
        yield url


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The shipped settings, templates, lists and example feed, copied so tests can edit them."""
    for name in ("templates", "subscribers", "examples"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "settings.toml", tmp_path / "settings.toml")
    return tmp_path


def run_cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `syndicate` command, in a subprocess, against a project folder."""
    return subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(project / "settings.toml"), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


def set_setting(config: Path, old: str, new: str) -> None:
    text = config.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {config}"
    config.write_text(text.replace(old, new, 1), encoding="utf-8")


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: object


@dataclass
class RecordingHandler:
    """Stores every message and counts SMTP sessions; refuses addresses listed in `refuse`."""

    messages: list[Received] = field(default_factory=list)
    sessions: set[int] = field(default_factory=set)
    refuse: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address, options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.sessions.add(id(session))
            self.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content or b"",
                    session.peer,
                )
            )
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_smtp(handler: object) -> Iterator[tuple[Controller, object]]:
    """A real aiosmtpd server on 127.0.0.1 with this handler, for the length of the block."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


@pytest.fixture
def smtp_server():
    with running_smtp(RecordingHandler()) as server:
        yield server
