"""The README's PostgreSQL section, followed as written against the test server."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, make_url

from syndicate import settings
from tests.conftest import ROOT
from tests.support.cli import run_cli
from tests.support.postgres import PostgresCluster


def section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("\n## PostgreSQL\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]


def shell_lines() -> list[str]:
    block = section().split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_postgres_extra_installs_psycopg_3() -> None:
    assert "pip install -e '.[postgres]'" in "\n".join(shell_lines())
    requires = metadata.requires("syndicate") or []

    def of_extra(name: str) -> list[str]:
        return [r for r in requires if re.search(rf"extra\s*==\s*['\"]{name}['\"]", r)]

    assert any(r.startswith("psycopg[binary]") for r in of_extra("postgres")), requires
    assert any(r.startswith("syndicate[postgres]") for r in of_extra("test")), requires


def test_the_commands_make_a_database_syndicate_opens(
    postgres_url: str, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = PostgresCluster.active
    assert cluster is not None
    admin = cluster.admin
    name = f"syndicate_readme_{os.getpid()}"
    as_admin = ["-h", str(admin.host), "-p", str(admin.port), "-U", str(admin.username)]
    lines = shell_lines()
    create_role, create_database = lines[0], lines[1]
    assert create_role.startswith("sudo -u postgres psql -c ")
    assert create_database == "sudo -u postgres createdb --owner syndicate syndicate"
    role_sql = shlex.split(create_role)[-1].replace("syndicate", name)
    subprocess.run(["psql", *as_admin, "-d", "postgres", "-c", role_sql], check=True)
    try:
        subprocess.run(["createdb", *as_admin, "--owner", name, name], check=True)
        [export] = [line for line in lines if line.startswith("export SYNDICATE_DATABASE_URL=")]
        url = make_url(shlex.split(export.removeprefix("export "))[0].split("=", 1)[1])
        assert (url.drivername, url.host, url.username) == (
            "postgresql+psycopg",
            "localhost",
            "syndicate",
        )
        url = url.set(host=admin.host, port=admin.port, username=name, database=name)
        monkeypatch.setenv("SYNDICATE_DATABASE_URL", url.render_as_string(hide_password=False))
        assert lines[-1] == ".venv/bin/syndicate db upgrade"
        status = run_cli(project, "db", "upgrade")
        assert status.returncode == 0, status.stderr

        engine = create_engine(url)
        tables = set(inspect(engine).get_table_names())
        engine.dispose()
        assert {"posts", "sends", "deliveries", "replies", "recipients"} <= tables
    finally:
        subprocess.run(["dropdb", *as_admin, "--force", "--if-exists", name], check=True)
        subprocess.run(["dropuser", *as_admin, "--if-exists", name], check=True)


def test_the_url_file_wins_over_the_variable_and_the_variable_over_url(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "the file wins over the variable, the variable over\n`url`" in section()
    config = project / "settings.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('url = "sqlite:///syndicate.db"', 'url = "sqlite:////u.db"'))
    monkeypatch.setenv("SYNDICATE_DATABASE_URL", "postgresql+psycopg://v@h/variable")
    assert settings.load(config).database_url == "postgresql+psycopg://v@h/variable"
    (project / "url").write_text("postgresql+psycopg://f@h/file\n")
    (project / "url").chmod(0o600)
    config.write_text(config.read_text().replace('url_file = ""', 'url_file = "url"'))
    assert settings.load(config).database_url == "postgresql+psycopg://f@h/file"


def test_on_postgres_the_project_folder_keeps_only_the_outbox(
    postgres_url: str, project: Path
) -> None:
    state_home = Path(os.environ["XDG_STATE_HOME"])  # the test's, in its tmp folder
    before = {p for p in project.iterdir()}
    result = run_cli(project, "run", "--once")
    assert result.returncode == 0, result.stderr
    assert {p for p in project.iterdir()} - before - {state_home} == {project / "outbox"}
    assert list((project / "outbox").glob("*.eml"))
    assert not list(project.rglob("*.db*")), "nothing written to a SQLite file"
    # The crash journal went to the state folder, not next to the settings.
    state = state_home / "syndicate"
    assert not state.exists() or all(p.suffix == ".accepted-journal" for p in state.iterdir())


def test_ci_runs_the_suite_on_both_databases() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "initdb" in ci and "pg_ctl" in ci and "trap stop_postgres EXIT" in ci
    assert 'SYNDICATE_TEST_DATABASE=sqlite bash -c "$test_command"' in ci
    assert "SYNDICATE_TEST_DATABASE=postgres .venv/bin/python -m pytest" in ci
    assert 'SYNDICATE_CI_POSTGRES="${SYNDICATE_CI_POSTGRES:-1}"' in ci  # on by default
    assert "SYNDICATE_CI_POSTGRES=1`, the default" in section()


def test_the_worker_unit_runs_the_worker_command_and_stops_it_gently() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    workers = text.split("\n### Several workers\n", 1)[1].split("\n## ", 1)[0]
    assert "`/etc/systemd/system/syndicate-worker@.service`" in workers
    unit = workers.split("```ini\n", 1)[1].split("```", 1)[0]
    sections: dict[str, dict[str, str]] = {}
    current = ""
    for line in unit.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = {}
        elif "=" in line:
            key, value = line.split("=", 1)
            sections[current][key] = value
    service = sections["Service"]
    command = shlex.split(service["ExecStart"])
    assert command[1:] == [
        "--config",
        "/srv/syndicate/settings.toml",
        "worker",
        "--concurrency",
        "4",
    ]
    assert service["KillSignal"] == "SIGTERM" and service["User"] == "syndicate"
    assert "%i" in sections["Unit"]["Description"]
    assert sections["Install"]["WantedBy"] == "multi-user.target"
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "worker", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "--concurrency" in result.stdout
