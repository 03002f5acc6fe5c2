"""Bringing a database's schema to the newest Alembic revision, once, under a lock.

Every process that opens the database calls `upgrade`: at the newest revision it costs one
SELECT and Alembic is never imported. Otherwise it takes a lock (a file next to the SQLite
database; `pg_advisory_lock` on PostgreSQL), looks again (another process may have just done
it) and runs the missing revisions, so processes starting together on an empty database cannot
race to create the same tables.

An empty database is made at the newest revision in one step, as Alembic's cookbook builds one
from scratch: the tables of schema.py (`create_all`) and Alembic's version row. Running the six
revisions instead (importing Alembic first) took 0.45 s against 0.26 s for a new SQLite file
(median of 7 on a quiet 2-core machine), which every first start and every test paid;
tests/test_db_migrate.py checks that both ways build the same tables, indexes, constraints and
rows.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from syndicate.db import schema
from syndicate.db.engine import companion_path
from syndicate.errors import SyndicateError

if TYPE_CHECKING:
    from alembic.config import Config

# The newest revision in migrations/versions (tests/test_db_migrate.py checks the two agree):
# knowing it here spares every command importing Alembic to find out it has nothing to do.
HEAD = "0006"

LOCK_SUFFIX = ".migrate-lock"
# pg_advisory_lock takes a 64-bit key; this one is "syndicate migrations" hashed, fixed forever.
ADVISORY_KEY = 0x5359_4E44_4D49_4752

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Alembic's version table, as its MigrationContext creates it (written here so that making an
# empty database need not import Alembic).
VERSION_TABLE = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)

log = logging.getLogger(__name__)


class SchemaTooNewError(SyndicateError):
    """The database was migrated by a newer syndicate than this one."""


def current(conn: Connection) -> str | None:
    """The revision the database is at; None before Alembic ever ran on it."""
    if not conn.dialect.has_table(conn, "alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


def upgrade(engine: Engine) -> str | None:
    """Run every revision the database lacks; returns the revision it was at before (HEAD:
    nothing to do; None: an empty database or one made before Alembic)."""
    try:
        with engine.connect() as conn:
            if current(conn) == HEAD:
                return HEAD
    except SQLAlchemyError:
        pass  # e.g. a table being created right now by another process: ask under the lock
    with _migration_lock(engine) as conn:
        found = current(conn)
        if found == HEAD:
            return HEAD
        if found is None and not inspect(conn).get_table_names():
            create_at_head(conn)
            conn.commit()
            log.info("database schema created at %s", HEAD)
            return None
        config = _alembic_config(conn)
        _refuse_unknown(config, found)
        if found is None and conn.dialect.has_table(conn, "meta"):
            log.info("bringing a database made before Alembic migrations to the baseline")
        from alembic import command

        # Alembic's own INFO lines (dialect, each revision's docstring) would break the one
        # record per line of our log; our own line below says what happened.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        command.upgrade(config, "head")
        conn.commit()
        log.info("database schema upgraded from %s to %s", found or "nothing", HEAD)
        return found


def create_at_head(conn: Connection) -> None:
    """Make an empty database what the revisions make of it: schema.py's tables, the row an
    older syndicate reads (see revision 0001), and the version row saying it is at HEAD."""
    schema.metadata.create_all(conn)
    conn.execute(
        schema.meta.insert().values(key="schema_version", value=schema.LEGACY_SCHEMA_VERSION)
    )
    VERSION_TABLE.create(conn)
    conn.execute(VERSION_TABLE.insert().values(version_num=HEAD))


def check_known(conn: Connection, found: str | None) -> None:
    """Raise SchemaTooNewError when `found` is a revision this syndicate does not know."""
    if found not in (None, HEAD):
        _refuse_unknown(_alembic_config(conn), found)


def _alembic_config(conn: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def _refuse_unknown(config: Config, found: str | None) -> None:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    if found is None:
        return
    try:
        ScriptDirectory.from_config(config).get_revision(found)
    except CommandError:
        raise SchemaTooNewError(
            f"the database schema is at revision {found}, which this syndicate does not know "
            f"(its newest is {HEAD}): a newer syndicate migrated it; upgrade syndicate"
        ) from None


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection held by this process alone among those migrating this database."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_KEY})
            conn.commit()
            try:
                yield conn
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
                conn.commit()
        return
    path = companion_path(engine.url, LOCK_SUFFIX)
    if path is None:  # in memory: no other process can see it
        with engine.connect() as conn:
            yield conn
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with engine.connect() as conn:
            yield conn
    finally:
        os.close(fd)  # closing releases the lock
