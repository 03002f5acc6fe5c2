"""Helpers for the inbound tests: a project that has sent one post, fixtures, tools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from syndicate import settings as settings_module
from syndicate import store

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "inbound"
# The fixtures' tokens are signed with this key (send 1 = newsletter to readers 1–4, send 2 =
# column to editors 5–6, as `syndicate run --once` plans them on the shipped example project).
KEY = "inbound-fixtures-key"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def env() -> dict[str, str]:
    return {**os.environ, "SYNDICATE_SECRET_KEY": KEY, "COLUMNS": "200"}


def cli(project: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(project / "settings.toml"), *args],
        cwd=project,
        input=stdin,
        capture_output=True,
        env=env(),
        timeout=120,
    )


def sent_project(folder: Path) -> Path:
    """The shipped project after one `syndicate run --once` (sends 1 and 2 made, outbox mode)."""
    for name in ("templates", "subscribers", "examples"):
        shutil.copytree(ROOT / name, folder / name)
    shutil.copy(ROOT / "settings.toml", folder / "settings.toml")
    result = cli(folder, "run", "--once")
    assert result.returncode == 0, result.stderr.decode()
    return folder


def copy_project(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def load(project: Path) -> tuple[settings_module.Settings, Engine, bytes]:
    settings = settings_module.load(project / "settings.toml")
    engine = store.connect(settings.database_url)
    return settings, engine, KEY.encode()


def edit(config: Path, old: str, new: str) -> None:
    text = config.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {config}"
    config.write_text(text.replace(old, new, 1), encoding="utf-8")


def use_smtp(project: Path, port: int) -> None:
    edit(project / "settings.toml", 'kind = "outbox"', 'kind = "smtp"')
    edit(
        project / "settings.toml",
        'host = "localhost"\nport = 587',
        f'host = "127.0.0.1"\nport = {port}',
    )
    edit(project / "settings.toml", 'security = "starttls"', 'security = "none"')


def require_tool(name: str) -> str:
    """The tool's path; under CI=true a missing tool fails the test, elsewhere it skips."""
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is not installed; .ci/run installs it with apt-get")
    pytest.skip(f"{name} is not installed (apt-get install it to run this test)")
