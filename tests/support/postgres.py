"""The tests' PostgreSQL: which database the suite runs on, a schema per test, and databases
that follow a project folder when the folder is copied.

SYNDICATE_TEST_DATABASE=postgres runs the suite on the server whose admin URL is in
SYNDICATE_TEST_POSTGRES_URL (.ci/run starts a private cluster and sets both); the fixtures are
in conftest.py.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from pathlib import Path
from typing import Any, ClassVar

SELECT_ENV = "SYNDICATE_TEST_DATABASE"
POSTGRES_ENV = "SYNDICATE_TEST_POSTGRES_URL"
# A pinned project names its database in this file, next to settings.toml (database.url_file,
# which wins over SYNDICATE_DATABASE_URL).
URL_FILE = "database-url"


def on_postgres() -> bool:
    return os.environ.get(SELECT_ENV, "sqlite").strip().lower() in ("postgres", "postgresql")


class PostgresCluster:
    """One database for the test session, a fresh schema in it for each test, and whole
    databases (cloned with CREATE DATABASE … TEMPLATE) for project folders that are copied.

    A schema costs ~20 ms to create and drop where CREATE DATABASE costs ~250 ms, and everything
    the code names lives in the connection's search_path, so a schema is as clean as a database.
    """

    active: ClassVar[PostgresCluster | None] = None

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy.engine import make_url

        self.admin = make_url(admin_url)
        self.prefix = f"syndicate_test_{os.getpid()}"
        self.counter = itertools.count(1)
        self.databases: list[str] = []
        self.session_databases: list[str] = []
        self.admin_connection = self._connect(self.admin.database or "postgres")
        self._drop(self.prefix)
        self.admin_connection.execute(f'CREATE DATABASE "{self.prefix}" TEMPLATE template0')
        self.connection = self._connect(self.prefix)

    def _connect(self, database: str) -> Any:
        import psycopg

        url = self.admin.set(drivername="postgresql", database=database)
        dsn = url.render_as_string(hide_password=False)
        return psycopg.connect(dsn, autocommit=True, connect_timeout=5)

    def url(self, database: str, **query: str) -> str:
        return self.admin.set(database=database, query=query).render_as_string(hide_password=False)

    def new_schema(self) -> tuple[str, str]:
        """A new empty schema and the SQLAlchemy URL whose connections live in it."""
        schema = f"t{next(self.counter)}"
        self.connection.execute(f"CREATE SCHEMA {schema}")
        url = self.url(self.prefix, options=f"-csearch_path={schema}", application_name=schema)
        return schema, url

    def drop_schema(self, schema: str) -> None:
        # A process the test left behind (killed mid-send, a daemon) must not block the drop.
        # Only this session's databases: another suite on the cluster numbers its schemas too.
        self.connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()"
            " AND (datname = %s OR datname LIKE %s)",
            (schema, self.prefix, f"{self.prefix}_d%"),
        )
        self.connection.execute(f"DROP SCHEMA {schema} CASCADE")

    def new_database(self, template: str = "template0", *, for_session: bool = False) -> str:
        """A new database, empty or a copy of `template`; returns its name. It is dropped at
        the end of the test that made it, or of the session (`for_session`, or made outside a
        test, by a module's fixture)."""
        name = f"{self.prefix}_d{next(self.counter)}"
        # CREATE DATABASE … TEMPLATE needs the template to have no other session.
        self._disconnect(template)
        self.admin_connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        (self.session_databases if for_session else self.databases).append(name)
        return name

    def drop_databases_since(self, count: int) -> None:
        while len(self.databases) > count:
            self._drop(self.databases.pop())

    def _disconnect(self, database: str) -> None:
        self.admin_connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )

    def _drop(self, database: str) -> None:
        self.admin_connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def close(self) -> None:
        self.connection.close()
        self.drop_databases_since(0)
        for name in self.session_databases:
            self._drop(name)
        self._drop(self.prefix)
        self.admin_connection.close()


def _write_url(project: Path, url: str) -> None:
    path = project / URL_FILE
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(url + "\n")


def pin_database(project: Path) -> None:
    """On PostgreSQL, give this project folder an empty database of its own for the session,
    named in its settings, so that a copy of the folder (copy_database) can get a copy of the
    database. On SQLite nothing: the database is already a file in the folder."""
    cluster = PostgresCluster.active
    if cluster is None or not on_postgres():
        return
    name = cluster.new_database(for_session=True)
    _write_url(project, cluster.url(name, application_name=name))
    config = project / "settings.toml"
    text = config.read_text(encoding="utf-8")
    assert 'url_file = ""' in text, f"{config} already names a url_file"
    config.write_text(text.replace('url_file = ""', f'url_file = "{URL_FILE}"', 1), "utf-8")


def copy_database(source: Path, target: Path) -> None:
    """After copying a project folder to `target`: on PostgreSQL, give the copy a copy of the
    source's database (a pinned folder's by CREATE DATABASE … TEMPLATE, the test's own schema
    by pg_dump into a new database), named in the copy's settings."""
    cluster = PostgresCluster.active
    if cluster is None or not on_postgres():
        return
    from sqlalchemy.engine import make_url

    if (source / URL_FILE).exists():
        template = make_url((source / URL_FILE).read_text(encoding="utf-8").strip()).database
        assert template
        name = cluster.new_database(template)
        _write_url(target, cluster.url(name, application_name=name))
        return
    schema = make_url(database_url_of(source)).query["application_name"]
    assert isinstance(schema, str)
    name = cluster.new_database()
    admin = cluster.admin
    where = ["-h", str(admin.host), "-p", str(admin.port), "-U", str(admin.username)]
    dump = subprocess.run(
        ["pg_dump", *where, "--schema", schema, "--no-owner", cluster.prefix],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(
        ["psql", *where, "-q", "-v", "ON_ERROR_STOP=1", "-d", name],
        input=dump,
        capture_output=True,
        check=True,
    )
    _write_url(target, cluster.url(name, options=f"-csearch_path={schema}", application_name=name))
    config = target / "settings.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(re.sub(r'(?m)^url_file = ".*"$', f'url_file = "{URL_FILE}"', text, count=1))


def empty_database(project: Path) -> None:
    """Start this project's database again from nothing (SQLite: the file is deleted)."""
    url = database_url_of(project)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).unlink()
        return
    from sqlalchemy.engine import make_url

    cluster = PostgresCluster.active
    assert cluster is not None
    schema = make_url(url).query["application_name"]
    assert isinstance(schema, str) and schema.startswith("t"), url
    cluster.drop_schema(schema)
    cluster.connection.execute(f"CREATE SCHEMA {schema}")


def database_url_of(project: Path) -> str:
    """The URL the `syndicate` command uses for this project in this test."""
    if (project / URL_FILE).exists():
        return (project / URL_FILE).read_text(encoding="utf-8").strip()
    return os.environ.get("SYNDICATE_DATABASE_URL") or f"sqlite:///{project / 'syndicate.db'}"
