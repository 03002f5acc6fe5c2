"""Review findings on the list sync (branch `pgscale`, syndicate/audience/lists.py).

1. A list replaced by another file of the same size and mtime (a symlink switched to a new
   export, or `mv` of a copy made with `cp -p`/`rsync -t`/an archive) is never read: the sync
   trusts (path, size, mtime) alone, though the inode and ctime changed.
2. A record the csv module refuses mid-file (a field over its 128 KiB limit) escapes as a
   traceback from `syndicate subscribers sync` (and every `send`/`run`), instead of one line
   naming the file and line while the good rows still land.
"""

from __future__ import annotations

from pathlib import Path

from syndicate import db
from syndicate.audience import subscribers
from syndicate.models import RecipientKind
from tests.support.cli import run_cli
from tests.support.lists import reader_keys, write_export


def test_a_list_swapped_for_another_file_of_the_same_size_and_mtime_is_read(
    tmp_path: Path,
) -> None:
    engine = db.connect(f"sqlite:///{tmp_path / 'lists.db'}")
    monday, tuesday = tmp_path / "exports" / "monday.csv", tmp_path / "exports" / "tuesday.csv"
    monday.parent.mkdir()
    write_export(monday, "email,name\nann@example.com,Ann\nbob@example.com,Bob\n")
    write_export(tuesday, "email,name\nann@example.com,Ann\nzed@example.com,Zed\n")
    assert monday.stat().st_size == tuesday.stat().st_size
    readers = tmp_path / "readers.csv"
    readers.symlink_to(monday)
    assert subscribers.sync(engine, readers, RecipientKind.READER).added == 2
    readers.unlink()
    readers.symlink_to(tuesday)  # the author points the list at today's export
    report = subscribers.sync(engine, readers, RecipientKind.READER)
    assert "zed@example.com" in reader_keys(engine), (
        f"the list now names zed@example.com, but the sync said unchanged_file="
        f"{report.unchanged_file}: another file (inode {tuesday.stat().st_ino}) was taken for "
        "the one it had read, by size and mtime alone"
    )
    engine.dispose()


def test_an_oversized_field_mid_list_is_one_clear_line_and_loses_no_good_row(
    project: Path,
) -> None:
    rows = [f"reader{n}@example.com,Reader {n}" for n in range(1, 6)]
    rows[2] = "huge@example.com," + "x" * 200_000  # line 4: over the csv module's field limit
    write_export(project / "subscribers" / "readers.csv", "email,name\n" + "\n".join(rows) + "\n")
    done = run_cli(project, "subscribers", "sync")
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "_csv.Error" not in output, output[-2000:]
    assert "readers.csv" in output and "4" in output, output[-2000:]
    listed = run_cli(project, "subscribers", "list", "--json")
    for n in (1, 2, 4, 5):
        assert f"reader{n}@example.com" in listed.stdout, listed.stdout[-2000:]
