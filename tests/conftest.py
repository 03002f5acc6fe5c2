"""Shared fixtures: a copy of the shipped project in a temporary folder, a real SMTP server, and
the database every test runs on (SQLite files by default; PostgreSQL when selected, see below)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.support.cli import run_process as run_cli  # noqa: F401 (the real process, by its old name)
from tests.support.postgres import POSTGRES_ENV, PostgresCluster, on_postgres
from tests.support.project import ROOT, make_project, set_setting  # noqa: F401 (shared names)
from tests.support.smtp import (  # noqa: F401 (shared names)
    Received,
    RecordingHandler,
    free_port,
    running_smtp,
)
from tests.support.tools import missing


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
    return make_project(tmp_path)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, RecordingHandler]]:
    with running_smtp(RecordingHandler()) as server:
        yield server
