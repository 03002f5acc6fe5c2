"""Which file a list was (syndicate/audience/lists.py, revision 0005): device, inode and ctime
are kept beside size and mtime, so another file of the same size and mtime is read, while the
same file untouched is still not opened."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from sqlalchemy import text

from syndicate import db
from syndicate.audience import lists
from syndicate.models import RecipientKind
from tests.support.lists import reader_keys, write_export


def test_a_list_moved_over_by_a_copy_with_the_same_size_and_mtime_is_read(
    tmp_path: Path,
) -> None:
    engine = db.connect(f"sqlite:///{tmp_path / 'lists.db'}")
    readers, copy = tmp_path / "readers.csv", tmp_path / "readers.csv.new"
    write_export(readers, "email\nann@example.com\n")
    assert lists.sync(engine, readers, RecipientKind.READER).added == 1
    assert lists.sync(engine, readers, RecipientKind.READER).unchanged_file
    write_export(copy, "email\nzed@example.com\n")  # as `cp -p` or `rsync -t` leave it
    os.replace(copy, readers)
    report = lists.sync(engine, readers, RecipientKind.READER)
    assert (report.added, report.unchanged_file) == (1, False)
    assert reader_keys(engine) == {"ann@example.com", "zed@example.com"}
    engine.dispose()


def test_a_list_synced_before_revision_0005_is_hashed_once_then_known(tmp_path: Path) -> None:
    engine = db.connect(f"sqlite:///{tmp_path / 'old.db'}")
    readers = tmp_path / "readers.csv"
    write_export(readers, "email\nann@example.com\n")
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
    assert reader_keys(engine) == {"ann@example.com"}
    engine.dispose()
