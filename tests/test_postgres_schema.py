"""PostgreSQL enforces what SQLite lets pass: column widths, boolean literals, concurrent DDL.

Every test here runs on PostgreSQL whichever database the suite runs on (the `postgres_url`
fixture: a fresh schema, also in SYNDICATE_DATABASE_URL), through the `syndicate` command.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import set_setting
from tests.support.cli import run_cli


def syndicate(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = run_cli(project, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_a_manual_send_awaiting_approval_is_recorded(postgres_url: str, project: Path) -> None:
    # 'awaiting_approval' is 17 characters: sends.state was VARCHAR(16), which PostgreSQL
    # enforces (StringDataRightTruncation) and SQLite never checked.
    config = project / "settings.toml"
    set_setting(config, 'policy = "immediately"', 'policy = "manual"')
    syndicate(project, "-q", "run", "--once")
    listed = json.loads(syndicate(project, "sends", "list", "--json").stdout)
    newsletter = [s for s in listed if s["channel"] == "newsletter"]
    assert newsletter and {s["state"] for s in newsletter} == {"awaiting_approval"}


def test_an_older_database_gains_its_boolean_column(postgres_url: str, project: Path) -> None:
    # Upgrading a database made before replies.temporary existed ran
    # `ALTER TABLE replies ADD COLUMN temporary BOOLEAN DEFAULT 0`: PostgreSQL refuses 0 as a
    # boolean. Made here from a fresh database, as a build before Alembic would have left it.
    syndicate(project, "-q", "status")
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE replies DROP COLUMN temporary"))
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("UPDATE meta SET value = '2' WHERE key = 'schema_version'"))
    syndicate(project, "-q", "status")
    with engine.connect() as conn:
        column = conn.execute(
            text(
                "SELECT data_type, column_default FROM information_schema.columns"
                " WHERE table_schema = current_schema()"
                " AND table_name = 'replies' AND column_name = 'temporary'"
            )
        ).one()
    engine.dispose()
    assert column.data_type == "boolean"


# Each process loads the command and its libraries, says "ready", and waits for the starting
# gun on stdin: the first connections then land within a millisecond of one another.
_GATED_START = """
import sys
import psycopg, sqlalchemy, sqlalchemy.dialects.postgresql.psycopg
from syndicate.cli import main
print("ready", flush=True)
sys.stdin.readline()
sys.argv = ["syndicate", *sys.argv[1:]]
main()
"""


def test_four_processes_starting_on_an_empty_database_all_start(
    postgres_url: str, project: Path
) -> None:
    # Four first starts at once used to race creating the schema: three failed with
    # UniqueViolation on pg_type_typname_nsp_index (CREATE TABLE of the same name).
    config = str(project / "settings.toml")
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _GATED_START, "--config", config, "-q", "status"],
            cwd=project,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for process in processes:
            assert process.stdout and process.stdout.readline() == "ready\n"
        for process in processes:
            assert process.stdin
            process.stdin.write("go\n")
            process.stdin.flush()
        outcomes = [process.communicate(timeout=120) for process in processes]
    finally:
        for process in processes:
            process.kill()
            process.wait()
    codes = [process.returncode for process in processes]
    assert codes == [0, 0, 0, 0], [err[-600:] for _, err in outcomes]
