"""The schema comes from Alembic revisions, run once under a lock when any process opens the
database; `syndicate db upgrade` / `db current` say where a database stands."""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from syndicate import db
from syndicate.cli import app
from syndicate.models import Channel, SendState
from tests.support.postgres import database_url_of
from tests.support.revisions import by_revisions
from tests.support.tools import missing

ROOT = Path(__file__).resolve().parent.parent
OPEN = "import sys; from syndicate import db; db.connect(sys.argv[1]).dispose(); print('ok')"


def scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(db.migrate.MIGRATIONS))
    return ScriptDirectory.from_config(config)


def test_head_names_the_newest_revision_and_history_is_one_line() -> None:
    assert scripts().get_heads() == [db.migrate.HEAD]


def described(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every table as the database describes it (columns in any order), and its rows."""
    inspector = inspect(engine)
    tables: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for name in sorted(inspector.get_table_names()):
            tables[name] = {
                "columns": sorted(
                    (c["name"], str(c["type"]), c["nullable"], str(c["default"]))
                    for c in inspector.get_columns(name)
                ),
                "primary key": inspector.get_pk_constraint(name),
                "foreign keys": sorted(map(repr, inspector.get_foreign_keys(name))),
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), i["unique"])
                    for i in inspector.get_indexes(name)
                ),
                "unique": sorted(map(repr, inspector.get_unique_constraints(name))),
                "checks": sorted(map(repr, inspector.get_check_constraints(name))),
                "rows": sorted(map(repr, conn.execute(text(f'SELECT * FROM "{name}"')))),
            }
    return tables


def test_the_revisions_build_exactly_the_tables_schema_py_describes(tmp_path: Path) -> None:
    engine = by_revisions(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, db.schema.metadata)
    assert differences == []


def assert_one_step_equals_the_revisions(fresh_url: str, migrated_url: str) -> None:
    fresh = db.connect(fresh_url)
    migrated = by_revisions(migrated_url)
    try:
        made, ran = described(fresh), described(migrated)
    finally:
        fresh.dispose()
        migrated.dispose()
    assert "alembic_version" in made and made["meta"]["rows"]  # the comparison saw them
    assert made == ran


def test_an_empty_database_is_made_at_head_as_the_revisions_make_it(tmp_path: Path) -> None:
    assert_one_step_equals_the_revisions(
        f"sqlite:///{tmp_path / 'fresh.db'}", f"sqlite:///{tmp_path / 'migrated.db'}"
    )
    # Made without importing Alembic: a first start costs what a later one does.
    script = f"{OPEN}\nprint('alembic' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", script, f"sqlite:///{tmp_path / 'third.db'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split() == ["ok", "False"], done.stderr


def test_on_postgresql_too(postgres_url: str, tmp_path: Path) -> None:
    with another_postgres_database() as migrated_url:
        assert_one_step_equals_the_revisions(postgres_url, migrated_url)


def test_a_fresh_database_is_stamped_and_a_second_open_does_not_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = db.connect(url)
    with engine.connect() as conn:
        assert db.migrate.current(conn) == db.migrate.HEAD
    assert db.migrate.upgrade(engine) == db.migrate.HEAD  # nothing to do, no lock taken
    # The migration lock file is private, like the database beside it.
    assert os.stat(tmp_path / f"x.db{db.migrate.LOCK_SUFFIX}").st_mode & 0o077 == 0


def test_four_processes_opening_an_empty_database_together_all_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    assert_four_start_together(url)
    engine = db.connect(url)
    with engine.connect() as conn:
        assert db.migrate.current(conn) == db.migrate.HEAD
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1


def test_a_process_waits_for_the_migration_lock(tmp_path: Path) -> None:
    """While another process migrates (holds the lock), an opening process waits for it."""
    database = tmp_path / "held.db"
    lock = os.open(f"{database}{db.migrate.LOCK_SUFFIX}", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    opener = subprocess.Popen(
        [sys.executable, "-c", OPEN, f"sqlite:///{database}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        assert opener.poll() is None, opener.communicate()
    finally:
        os.close(lock)
    out, err = opener.communicate(timeout=60)
    assert (opener.returncode, out.strip()) == (0, "ok"), err


def test_a_database_from_a_newer_syndicate_is_refused_in_one_line(project: Path) -> None:
    # the test's own database: the project's SQLite file, or its PostgreSQL schema
    url = os.environ.get("SYNDICATE_DATABASE_URL") or f"sqlite:///{project / 'syndicate.db'}"
    engine = db.connect(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    engine.dispose()
    done = subprocess.run(
        [sys.executable, "-m", "syndicate", "status"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: the database schema is at revision f00d, which this syndicate does not know "
        f"(its newest is {db.migrate.HEAD}): a newer syndicate migrated it; upgrade syndicate"
    ]


def test_db_current_and_db_upgrade(project: Path) -> None:
    runner = CliRunner()
    config = ["--config", str(project / "settings.toml")]

    def say(*args: str) -> str:
        result = runner.invoke(app, [*config, "db", *args])
        assert result.exit_code == 0, result.output
        return result.output

    database = project / "syndicate.db"
    if database_url_of(project).startswith("sqlite"):
        assert say("current") == (
            f"no database yet ({database} does not exist): 'syndicate db upgrade' (or any "
            "command) creates it\n"
        )
        assert not database.exists()  # `current` changes nothing, not even an empty file
        sqlite3.connect(database).close()
    assert say("current").startswith("no revision (empty, or made before Alembic); the newest is")
    if database_url_of(project).startswith("sqlite"):
        with sqlite3.connect(database) as conn:  # `current` created no table
            assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
    assert say("upgrade") == (
        "Upgraded the database from no revision (empty, or made before Alembic) to revision "
        f"{db.migrate.HEAD}.\n"
    )
    assert say("current") == f"{db.migrate.HEAD} (the newest)\n"
    assert "nothing to do" in say("upgrade")


def test_states_and_kinds_fit_their_columns() -> None:
    """PostgreSQL enforces VARCHAR lengths (SQLite does not): every value of every enum stored
    in a column fits it."""
    from syndicate.models import DeliveryState, RecipientKind, RecipientStatus

    widths = {
        (db.schema.sends.c.state, SendState),
        (db.schema.sends.c.channel, Channel),
        (db.schema.deliveries.c.state, DeliveryState),
        (db.schema.recipients.c.kind, RecipientKind),
        (db.schema.recipients.c.status, RecipientStatus),
    }
    for column, values in widths:
        assert max(len(v.value) for v in values) <= column.type.length, column


# Query modules still to move into db/ (docs/architecture.md, "Known debts"); the list may only
# shrink. (The desk's and the corrections' queries moved into db/desk.py and db/corrections.py.)
NOT_MOVED_YET: set[str] = set()


def test_nothing_outside_syndicate_db_imports_sqlalchemy() -> None:
    offenders = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "syndicate").rglob("*.py")
        if "db" not in path.relative_to(ROOT / "syndicate").parts[:1]
        and re.search(r"^\s*(from|import) sqlalchemy", path.read_text(encoding="utf-8"), re.M)
    }
    assert offenders == set()


def assert_four_start_together(url: str) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in processes]
    assert [(code, out.strip()) for code, out, _ in results] == [(0, "ok")] * 4, results


@contextmanager
def another_postgres_database() -> Iterator[str]:
    """An empty database on the PostgreSQL server SYNDICATE_TEST_POSTGRES_URL names."""
    base = os.environ.get("SYNDICATE_TEST_POSTGRES_URL")
    if not base:
        missing("SYNDICATE_TEST_POSTGRES_URL is not set (.ci/run starts a private server)")
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = f"syndicate_migrate_{os.getpid()}_{time.monotonic_ns()}"
    server = create_engine(base, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with another_postgres_database() as url:
        yield url


def test_four_processes_on_an_empty_postgresql_database_all_start(postgres_url: str) -> None:
    assert_four_start_together(postgres_url)
    engine = db.connect(postgres_url)
    with engine.begin() as conn:
        assert db.migrate.current(conn) == db.migrate.HEAD
        # The column that was VARCHAR(16) holds the 17-character state.
        post_id = conn.execute(
            db.schema.posts.insert().values(
                guid="g", title="t", link="l", first_seen=db.now(), eligible=True
            )
        ).inserted_primary_key[0]
        db.sends.create_send(
            conn, post_id, Channel.NEWSLETTER, db.now(), state=SendState.AWAITING_APPROVAL
        )
    engine.dispose()
