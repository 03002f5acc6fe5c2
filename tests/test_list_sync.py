"""The author's lists sync streaming and only when the file changed (audience/lists.py), and
deliveries are planned in chunks of recipient ids (db.deliveries.plan_deliveries).

On the suite's database: a SQLite file, or the test's PostgreSQL schema.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from syndicate import db
from syndicate.audience import importers, lists, subscribers
from syndicate.models import Channel, RecipientKind, RecipientStatus

HOUR_AGO_NS = (int(time.time()) - 3600) * 1_000_000_000


@pytest.fixture
def engine(tmp_path: Path):
    engine = db.connect(
        os.environ.get("SYNDICATE_DATABASE_URL") or f"sqlite:///{tmp_path / 'lists.db'}"
    )
    yield engine
    engine.dispose()


def write_list(path: Path, text: str, *, encoding: str = "utf-8") -> None:
    """Write a list as an author's editor would, an hour ago (a file written moments before a
    sync has its mtime distrusted, see lists.RACY_SECONDS)."""
    path.write_bytes(text.encode(encoding))
    os.utime(path, ns=(HOUR_AGO_NS, HOUR_AGO_NS))


def people(engine: db.Engine) -> dict[str, tuple[str, str]]:
    with engine.connect() as conn:
        rows = db.recipients.list_recipients(conn, RecipientKind.READER)
    return {row.email_key: (row.name, row.status.value) for row in rows}


def test_an_unchanged_list_is_not_read_again(
    engine: db.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "readers.csv"
    write_list(path, "email,name\nann@example.com,Ann\nbob@example.com,Bob\n")
    first = subscribers.sync(engine, path, RecipientKind.READER)
    assert first.added == 2 and not first.unchanged_file
    with engine.connect() as conn:
        recorded = db.list_files.last_synced(conn, "reader")
    assert recorded is not None and recorded.size == path.stat().st_size
    assert recorded.mtime_ns == HOUR_AGO_NS
    # Untouched (size, mtime, inode and ctime as recorded): not even opened. Other bytes of
    # the same size and mtime change the ctime, and are read (tests/test_list_file_identity.py).

    def no_reading(*args: object, **kwargs: object) -> tuple[str, str]:
        raise AssertionError("an unchanged list was opened")

    monkeypatch.setattr(lists, "fingerprint", no_reading)
    again = subscribers.sync(engine, path, RecipientKind.READER)
    assert again.unchanged_file and again.added == 0 and again.problems == []
    assert set(people(engine)) == {"ann@example.com", "bob@example.com"}


def test_a_touched_list_with_the_same_bytes_is_hashed_not_parsed(
    engine: db.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "readers.csv"
    write_list(path, "email,name\nann@example.com,Ann\n")
    subscribers.sync(engine, path, RecipientKind.READER)
    os.utime(path, ns=(HOUR_AGO_NS + 10**9, HOUR_AGO_NS + 10**9))

    def no_parsing(*args: object, **kwargs: object) -> bool:
        raise AssertionError("an unchanged list was parsed")

    monkeypatch.setattr(lists, "_merge_file", no_parsing)
    again = subscribers.sync(engine, path, RecipientKind.READER)
    assert again.unchanged_file
    with engine.connect() as conn:
        recorded = db.list_files.last_synced(conn, "reader")
    assert recorded is not None and recorded.mtime_ns == HOUR_AGO_NS + 10**9


def test_a_list_written_just_now_is_hashed_next_time(engine: db.Engine, tmp_path: Path) -> None:
    """A same-size edit within the file system's timestamp granularity keeps the mtime: a list
    synced right after it was written is compared by its bytes next time."""
    path = tmp_path / "readers.csv"
    path.write_text("email,name\nann@example.com,Ann\n")
    subscribers.sync(engine, path, RecipientKind.READER)
    stat = path.stat()
    path.write_text("email,name\nzoe@example.com,Zoe\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = subscribers.sync(engine, path, RecipientKind.READER)
    assert not again.unchanged_file and again.added == 1
    assert "zoe@example.com" in people(engine)


def test_a_changed_list_is_applied_exactly(engine: db.Engine, tmp_path: Path) -> None:
    path = tmp_path / "readers.csv"
    write_list(
        path,
        "email,name\nann@example.com,Ann\nbob@example.com,Bob\ncat@example.com,Cat\n"
        "dan@example.com,Dan\n",
    )
    subscribers.sync(engine, path, RecipientKind.READER)
    with engine.begin() as conn:
        bob = db.recipients.find_recipient(conn, RecipientKind.READER, "bob@example.com")
        assert bob is not None and bob.id is not None
        db.recipients.mark_recipient(conn, bob.id, RecipientStatus.UNSUBSCRIBED, "link")
    # Ann renamed, Bob still listed (he unsubscribed: he stays so), Cat gone from the file,
    # Dan marked unsubscribed in the file, Eve new.
    write_list(
        path,
        "email,name,status\nann@example.com,Ann Smith,\nbob@example.com,Bob,\n"
        "dan@example.com,Dan,unsubscribed\neve@example.com,Eve,\n",
    )
    report = subscribers.sync(engine, path, RecipientKind.READER)
    assert (report.added, report.updated, report.kept_suppressed, report.newly_suppressed) == (
        1,
        1,
        1,
        1,
    )
    assert report.problems == [] and report.unchanged == 0
    assert people(engine) == {
        "ann@example.com": ("Ann Smith", "active"),
        "bob@example.com": ("Bob", "unsubscribed"),
        # The database is the record: leaving the file does not unsubscribe (README).
        "cat@example.com": ("Cat", "active"),
        "dan@example.com": ("Dan", "unsubscribed"),
        "eve@example.com": ("Eve", "active"),
    }


def test_chunk_boundaries_lose_no_one_and_keep_the_first_of_a_duplicate(
    engine: db.Engine, tmp_path: Path
) -> None:
    count = subscribers.MERGE_CHUNK + 1
    lines = [f"r{n:05d}@example.com,Reader {n}" for n in range(count)]
    # The first address again, in the second chunk: the first row (line 2) wins.
    lines.append("R00000@EXAMPLE.COM,Someone Else")
    path = tmp_path / "readers.csv"
    write_list(path, "email,name\n" + "\n".join(lines) + "\n")
    report = subscribers.sync(engine, path, RecipientKind.READER)
    assert report.added == count
    assert [str(s.message) for s in report.skipped] == [
        "R00000@example.com already on line 2; kept the first"
    ]
    everyone = people(engine)
    assert len(everyone) == count and everyone["r00000@example.com"][0] == "Reader 0"


def test_planning_in_chunks_plans_everyone_once(engine: db.Engine, tmp_path: Path) -> None:
    chunk = 10
    path = tmp_path / "readers.csv"
    write_list(path, "email\n" + "\n".join(f"p{n}@example.com" for n in range(chunk + 1)) + "\n")
    subscribers.sync(engine, path, RecipientKind.READER)
    with engine.begin() as conn:
        post_id = db.posts.insert_post(conn, _post(), eligible=True)
        send_id = db.sends.create_send(conn, post_id, Channel.NEWSLETTER, db.now())
        assert send_id is not None
        assert db.deliveries.plan_deliveries(conn, send_id, RecipientKind.READER, chunk=chunk) == (
            chunk + 1
        )
        assert db.deliveries.plan_deliveries(conn, send_id, RecipientKind.READER, chunk=3) == 0
        planned = conn.execute(
            db.schema.deliveries.select().where(db.schema.deliveries.c.send_id == send_id)
        ).all()
    assert len({row.recipient_id for row in planned}) == len(planned) == chunk + 1


def test_streaming_reports_the_same_rows_as_the_import_parser(
    engine: db.Engine, tmp_path: Path
) -> None:
    """Same checks, same messages, same lines as importers.parse, in Windows-1252."""
    path = tmp_path / "readers.csv"
    write_list(
        path,
        "Email;Name;Status\n"
        "rene@example.com;Ren\u00e9 Dub\u00e9;\n"
        ";nobody;\n"
        "not an address;X;\n"
        "ok@example.com;OK;maybe\n"
        "RENE@example.com;Again;\n"
        "gone@example.com;Gone;unsubscribed\n",
        encoding="cp1252",
    )
    parsed = importers.parse(path)
    report = subscribers.sync(engine, path, RecipientKind.READER)
    assert (
        (report.encoding, report.delimiter)
        == (parsed.encoding, parsed.delimiter)
        == (
            "cp1252",
            ";",
        )
    )
    assert report.problems == parsed.problems and report.skipped == parsed.skipped
    assert report.added + report.added_suppressed == len(parsed.rows) == 2
    assert people(engine)["rene@example.com"] == ("Ren\u00e9 Dub\u00e9", "active")


def _post():
    from syndicate.models import Post

    return Post("chunks", "Chunks", "https://example.com/chunks", "A", db.now(), "", "<p>x</p>")


def test_subscribers_sync_always_reads_the_lists(project: Path) -> None:
    from tests.support.cli import run_cli

    assert run_cli(project, "subscribers", "sync").returncode == 0
    again = run_cli(project, "subscribers", "sync", "--json")
    assert again.returncode == 0, again.stderr
    import json

    readers = json.loads(again.stdout)["lists"][0]
    assert not readers["unchanged_file"] and readers["unchanged"] == 4


def test_the_readme_names_the_planning_chunk() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    sentence = " ".join(readme.split())
    assert f"{db.deliveries.PLAN_CHUNK:,} recipient ids at a time" in sentence
    assert "INSERT … SELECT … WHERE NOT EXISTS" in sentence
