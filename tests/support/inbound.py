"""Helpers for the inbound tests: a project that has sent one post, fixtures, tools."""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from syndicate import db
from syndicate import settings as settings_module
from syndicate.db import Engine
from tests.support.cli import invoke, process
from tests.support.postgres import copy_database, pin_database
from tests.support.project import ROOT, copy_folder, make_project
from tests.support.tools import missing, require_module, require_tool  # noqa: F401 (shared rule)

FIXTURES = ROOT / "tests" / "fixtures" / "inbound"
# The fixtures' tokens are signed with this key (send 1 = newsletter to readers 1–4, send 2 =
# column to editors 5–6, as `syndicate run --once` plans them on the shipped example project).
KEY = "inbound-fixtures-key-signs-tokens-0123"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def env() -> dict[str, str]:
    return {**os.environ, "SYNDICATE_SECRET_KEY": KEY, "COLUMNS": "200"}


def cli(project: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """The `syndicate` command run in this process (fast), with the fixtures' key."""
    return invoke(project, *args, stdin=stdin, env={"SYNDICATE_SECRET_KEY": KEY, "COLUMNS": "200"})


def cli_process(
    project: Path, *args: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """The real `syndicate` command in a subprocess, as an MTA runs it."""
    return process(project, *args, stdin=stdin, env=env())


_TEMPLATE: list[Path] = []


def sent_project(folder: Path) -> Path:
    """The shipped project after one `syndicate run --once` (sends 1 and 2 made, outbox mode).

    Made once per test session by the real command, then copied for each test."""
    if not _TEMPLATE:
        scratch = Path(tempfile.mkdtemp(prefix="syndicate-inbound-"))
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        _TEMPLATE.append(_make_sent_project(scratch / "project"))
    copy_folder(_TEMPLATE[0], folder)
    copy_database(_TEMPLATE[0], folder)
    return folder


def _make_sent_project(folder: Path) -> Path:
    make_project(folder)
    pin_database(folder)
    result = cli(folder, "run", "--once")
    assert result.returncode == 0, result.stderr.decode()
    return folder


def copy_project(source: Path, target: Path) -> Path:
    copy_folder(source, target)
    copy_database(source, target)
    return target


def sent_fixtures(name: str) -> tuple[Any, Any]:
    """A test module's `base` fixture (the sent project, once per module, in a folder named
    `name`) and `project` (a copy of it for each test): `base, project = sent_fixtures("x")`."""

    @pytest.fixture(scope="module")
    def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return sent_project(tmp_path_factory.mktemp(name) / "project")

    @pytest.fixture
    def project(base: Path, tmp_path: Path) -> Path:
        return copy_project(base, tmp_path / "project")

    return base, project


def load(project: Path) -> tuple[settings_module.Settings, Engine, bytes]:
    settings = settings_module.load(project / "settings.toml")
    engine = db.connect(settings.database_url)
    return settings, engine, KEY.encode()


def edit(config: Path, old: str, new: str) -> None:
    text = config.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {config}"
    config.write_text(text.replace(old, new, 1), encoding="utf-8")


def set_url_file(config: Path, value: str) -> None:
    """Point database.url_file at `value`, whatever it was (a PostgreSQL run pins each project
    to its database with it: tests/support/postgres.py)."""
    text = config.read_text(encoding="utf-8")
    config.write_text(re.sub(r'(?m)^url_file = ".*"$', f'url_file = "{value}"', text, count=1))


def use_smtp(project: Path, port: int) -> None:
    edit(project / "settings.toml", 'kind = "outbox"', 'kind = "smtp"')
    edit(
        project / "settings.toml",
        'host = "localhost"\nport = 587',
        f'host = "127.0.0.1"\nport = {port}',
    )
    edit(project / "settings.toml", 'security = "starttls"', 'security = "none"')


def signed_ids(project: Path, raw: bytes) -> bytes:
    """The fixture with its `<syndicate.sN.rM@…>` references replaced by the Message-IDs this
    project really sent (signed, with its installation id)."""
    import re

    from syndicate import tokens

    _, engine, key = load(project)
    installation = db.meta.installation_id(engine)

    def real(match: re.Match[bytes]) -> bytes:
        send_id, recipient_id, domain = match.groups()
        mid = tokens.message_id(key, installation, int(send_id), int(recipient_id), domain.decode())
        return mid.encode()

    return re.sub(rb"<syndicate\.s(\d+)\.r(\d+)@([^>]+)>", real, raw)


def replies(project: Path) -> list[dict]:
    """`replies list --json` of a project: what the author would see, newest first."""
    result = cli(project, "replies", "list", "--json")
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)
