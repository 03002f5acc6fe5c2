"""A copy of the shipped project (settings, templates, lists, example feed) that a test may edit."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("templates", "subscribers", "examples")


def make_project(folder: Path) -> Path:
    """The shipped settings, templates, lists and example feed, copied into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        shutil.copytree(ROOT / name, folder / name)
    shutil.copy(ROOT / "settings.toml", folder / "settings.toml")
    return folder


def set_setting(config: Path, old: str, new: str) -> None:
    """Replace the first `old` in a settings file by `new`; `old` must be there."""
    text = config.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {config}"
    config.write_text(text.replace(old, new, 1), encoding="utf-8")


def copy_folder(source: Path, target: Path) -> Path:
    """A copy of a project folder whose SQLite files are copied with SQLite's backup API.

    Copying `*.db`, `*.db-wal` and `*.db-shm` as files races with any connection to them: when
    the garbage collector closes a test's last connection, SQLite folds the WAL into the file
    and deletes it, between copytree's listing and its copy (seen: FileNotFoundError for -shm).
    The backup API copies the committed database whatever its WAL holds.
    """
    databases = list(source.rglob("*.db"))  # before the copy: the target may be inside source
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.db", "*.db-wal", "*.db-shm"))
    for database in databases:
        copy = target / database.relative_to(source)
        with closing(sqlite3.connect(database)) as reader, closing(sqlite3.connect(copy)) as writer:
            reader.backup(writer)
    return target
