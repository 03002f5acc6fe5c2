"""Which file a list was (syndicate/audience/lists.py, revision 0005): device, inode and ctime
are kept beside size and mtime, so another file of the same size and mtime is read, while the
same file untouched is still not opened."""

from __future__ import annotations

import os
import time
from pathlib import Path

from alembic import command
from sqlalchemy import text

from syndicate import db
from syndicate.audience import lists
from syndicate.models import RecipientKind

HOUR_AGO_NS = (int(time.time()) - 3600) * 1_000_000_000


def _export(path: Path, body: str) -> None:
    path.write_text(body, encoding="utf-8")
    os.utime(path, ns=(HOUR_AGO_NS, HOUR_AGO_NS))


def _readers(engine: db.Engine) -> set[str]:
    with engine.connect() as conn:
        return {row.email_key for row in db.recipients.list_recipients(conn, RecipientKind.READER)}


def test_a_list_moved_over_by_a_copy_with_the_same_size_and_mtime_is_read(
    tmp_path: Path,
) -> None:
    engine = db.connect(f"sqlite:///{tmp_path / 'lists.db'}")
    readers, copy = tmp_path / "readers.csv", tmp_path / "readers.csv.new"
    _export(readers, "email\nann@example.com\n")
    assert lists.sync(engine, readers, RecipientKind.READER).added == 1
    assert lists.sync(engine, readers, RecipientKind.READER).unchanged_file
    _export(copy, "email\nzed@example.com\n")  # as `cp -p` or `rsync -t` leave it
    os.replace(copy, readers)
    report = lists.sync(engine, readers, RecipientKind.READER)
    assert (report.added, report.unchanged_file) == (1, False)
    assert _readers(engine) == {"ann@example.com", "zed@example.com"}
    engine.dispose()


def test_a_list_synced_before_revision_0005_is_hashed_once_then_known(tmp_path: Path) -> None:
    engine = db.connect(f"sqlite:///{tmp_path / 'old.db'}")
    readers = tmp_path / "readers.csv"
    _export(readers, "email\nann@example.com\n")
    assert lists.sync(engine, readers, RecipientKind.READER).added == 1
    with engine.connect() as conn:
        config = db.migrate._alembic_config(conn)
        command.downgrade(config, "0004")
        conn.commit()
        assert db.migrate.current(conn) == "0004"
        [kept] = conn.execute(text("SELECT path, sha256 FROM list_files")).all()
    assert db.migrate.upgrade(engine) == "0004"
    with engine.connect() as conn:
        before = db.list_files.last_synced(conn, RecipientKind.READER.value)
    assert before is not None and (before.path, before.sha256) == tuple(kept)
    assert (before.device, before.inode, before.ctime_ns) == (None, None, None)
    # Not known by stat any more: hashed, found the same, and its identity recorded.
    assert lists.sync(engine, readers, RecipientKind.READER).unchanged_file
    with engine.connect() as conn:
        after = db.list_files.last_synced(conn, RecipientKind.READER.value)
    stat = readers.stat()
    assert after is not None
    assert (after.device, after.inode, after.ctime_ns) == (
        stat.st_dev,
        stat.st_ino,
        stat.st_ctime_ns,
    )
    assert _readers(engine) == {"ann@example.com"}
    engine.dispose()
