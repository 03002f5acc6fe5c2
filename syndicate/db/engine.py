"""Opening the database: SQLite pragmas, a private file, the schema brought up to date.

SQLAlchemy Core keeps SQL visible and works the same on SQLite (the default, in WAL mode so the
web app and the daemon can share it) and PostgreSQL. Only `syndicate/db/` imports SQLAlchemy;
other code names these types through `syndicate.db`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import URL, Connection, CursorResult, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

__all__ = [
    "URL",
    "Connection",
    "DatabaseError",
    "Engine",
    "IntegrityError",
    "companion_path",
    "connect",
]

# Any failure the database reports (a lost connection, a locked file, a constraint).
DatabaseError = SQLAlchemyError

log = logging.getLogger(__name__)


def connect(url: str, *, upgrade: bool = True) -> Engine:
    """Open the database and, unless told not to, bring its schema to the newest revision
    (under a lock: see migrate.upgrade)."""
    engine = create_engine(url, connect_args=_connect_args(url))
    if engine.dialect.name == "sqlite":
        _keep_private(engine.url.database)
        event.listen(engine, "connect", _sqlite_pragmas)
    if upgrade:
        from syndicate.db import migrate

        migrate.upgrade(engine)
    return engine


def missing_file(url: str) -> Path | None:
    """The SQLite file this URL names, when it does not exist yet (opening it would create it);
    None for a file that exists, an in-memory database or a server."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    path = companion_path(parsed, "")
    return path if path is not None and not path.exists() else None


def _connect_args(url: str) -> dict[str, object]:
    """psycopg prepares a statement on the server after its fifth run, and PostgreSQL may then
    keep a generic plan made while a table was empty: the list sync's lookup of each chunk of
    addresses (one transaction that fills `recipients`) stayed a sequential scan, and 100,000
    new readers took 283 s instead of 9 s (measured 2026-12-02, PostgreSQL 15). Every query is
    planned for the data it meets; this also suits a pooler in transaction mode."""
    return {"prepare_threshold": None} if url.startswith("postgresql+psycopg") else {}


def companion_path(url: URL, suffix: str) -> Path | None:
    """A file that belongs with this database: next to a SQLite file; for a server database
    (PostgreSQL), in this machine's state folder under a name derived from the URL. None for an
    in-memory database, which dies with us."""
    if url.get_backend_name() == "sqlite":
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database + suffix)
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    name = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
    return state / "syndicate" / f"{name}{suffix}"


def new_id(result: CursorResult[Any]) -> int:
    """The primary key a single-row INSERT gave its row."""
    key = result.inserted_primary_key
    if key is None:
        raise SQLAlchemyError("the insert returned no primary key")
    return int(key[0])


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _keep_private(database: str | None) -> None:
    """The SQLite file holds the token key and every reply: readable by its owner only.

    It is created 0600 whatever the umask, and SQLite gives its -wal and -shm files the mode of
    the database file. A file an older version left readable is narrowed.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    except OSError:
        return  # SQLite reports the folder or permission problem in its own words
    for companion in ("", "-wal", "-shm", "-journal"):
        file = Path(f"{path}{companion}")
        try:
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("%s is readable by other users and cannot be narrowed: %s", file, exc)
