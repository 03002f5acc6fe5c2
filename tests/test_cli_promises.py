"""What a columnist expects at the command line: help, one-line errors, posts, read replies,
one story per command, the feed's word count and subscriber imports.

Commands run in-process through `syndicate.cli.main` (the console script's entry point, error
handling included) against a copy of the shipped project and its SQLite file.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from syndicate import db, settings
from syndicate.audience import subscribers
from syndicate.cli import main
from syndicate.feedwatch import feed
from syndicate.models import RecipientKind
from syndicate.render import column_text
from syndicate.render import text as render_text
from syndicate.render.column import build_draft
from syndicate.render.column_text import body_word_count
from syndicate.render.sanitize import sanitize
from tests.conftest import ROOT, set_setting
from tests.support.postgres import database_url_of, empty_database


class Cli:
    def __init__(self, project: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
        self.project, self.capsys, self.monkeypatch = project, capsys, monkeypatch
        monkeypatch.chdir(project)

    def __call__(self, *args: str, config: bool = True) -> tuple[int, str, str]:
        argv = ["syndicate", *(["--config", str(self.project / "settings.toml")] if config else [])]
        self.monkeypatch.setattr(sys, "argv", [*argv, *args])
        self.capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def cli(project: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> Cli:
    return Cli(project, capsys, monkeypatch)


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


# --- help and messages -------------------------------------------------------------------------


def test_help_has_no_type_tags_and_prints_section_names_and_real_defaults(cli: Cli) -> None:
    for args in (["--help"], ["run", "--help"], ["replies", "read", "--help"]):
        code, out, _ = cli(*args)
        assert code == 0 and "<bool>" not in out, out
    _, push, _ = cli("replies", "push", "--help")
    assert "[inbound.wordpress]" in push
    _, serve, _ = cli("serve", "--help")
    assert "(8000)" in serve and "(127.0.0.1)" in serve


def test_an_error_naming_a_section_prints_the_section(cli: Cli) -> None:
    code, _, err = cli("replies", "push")
    assert code == 1
    assert "[inbound.wordpress]" in one_error_line(err)


@pytest.mark.parametrize(
    ("encode", "expected"),
    [
        (lambda t: t.encode("latin-1", errors="replace"), "not UTF-8"),
        (lambda t: t.encode("utf-16"), "UTF-16"),
        (lambda t: t.encode("utf-16-le"), "UTF-16"),
    ],
)
def test_settings_in_another_encoding_is_one_clear_line(cli: Cli, encode, expected: str) -> None:
    config = cli.project / "settings.toml"
    body = config.read_text(encoding="utf-8").replace("Jane Marlowe", "Zoë Pérez")
    config.write_bytes(encode(body))
    code, _, err = cli("status")
    line = one_error_line(err)
    assert code == 1 and expected in line and "settings.toml" in line and "UTF-8" in line


def test_settings_with_a_byte_order_mark_is_read(cli: Cli) -> None:
    config = cli.project / "settings.toml"
    config.write_bytes(b"\xef\xbb\xbf" + config.read_bytes())
    assert settings.load(config).author.name == "Jane Marlowe"
    code, _out, err = cli("posts", "list")
    assert code == 0, err


def test_config_pointing_at_a_folder_is_one_clear_line(cli: Cli) -> None:
    code, _, err = cli("--config", str(cli.project), "status", config=False)
    assert code == 1 and "is a folder" in one_error_line(err)


def test_a_bounce_address_with_a_plus_is_one_clear_line(cli: Cli) -> None:
    config = cli.project / "settings.toml"
    config.write_text(
        config.read_text().replace('bounce_address = ""', 'bounce_address = "b+x@example.com"')
    )
    code, _, err = cli("status")
    assert code == 1 and "must not contain '+'" in one_error_line(err)


def test_init_copy_templates_copies_every_shipped_template(cli: Cli) -> None:
    code, _, err = cli("init", "copied", "--copy-templates", config=False)
    assert code == 0, err
    shipped = {
        path.relative_to(ROOT / "templates")
        for path in (ROOT / "templates").rglob("*")
        if path.is_file()
    }
    copied = {
        path.relative_to(cli.project / "copied" / "templates")
        for path in (cli.project / "copied" / "templates").rglob("*")
        if path.is_file()
    }
    assert shipped and shipped <= copied, shipped - copied
    code, _, err = cli("--config", "copied/settings.toml", "preview", "latest", config=False)
    line = one_error_line(err)
    assert code == 1 and "run --once" in line and "use 'latest'" not in line
    code, out, err = cli("--config", "copied/settings.toml", "run", "--once", config=False)
    assert code == 0 and "First run: 5 post(s)" in out, err
    (cli.project / "copied" / "templates" / "email" / "edition.txt.j2").write_text(
        "COPIED TEMPLATE {{ title }}\n"
    )
    code, out, err = cli("--config", "copied/settings.toml", "preview", "latest", config=False)
    assert code == 0 and "COPIED TEMPLATE" in out, err


def test_preview_refuses_a_pdf_and_writes_nothing(cli: Cli) -> None:
    assert cli("run", "--once")[0] == 0
    code, _, err = cli("preview", "latest", "--out", "x.pdf")
    assert code == 1 and ".pdf" in one_error_line(err)
    assert not (cli.project / "x.pdf").exists()


# --- posts list ---------------------------------------------------------------------------------


def test_posts_list_shows_ids_titles_and_each_channels_state(cli: Cli) -> None:
    code, out, _ = cli("posts", "list")
    assert code == 0 and "No posts yet" in out
    assert cli("run", "--once")[0] == 0
    code, out, _ = cli("posts", "list", "--json")
    posts = json.loads(out)
    assert [p["id"] for p in posts] == [5, 4, 3, 2, 1]
    newest = posts[0]
    assert newest["title"] == "The job is not the work — and that’s the point"
    assert newest["published"] == "2026-11-26T14:30:00+00:00"
    readers = len((cli.project / "subscribers/readers.csv").read_text().splitlines()) - 1
    editors = len((cli.project / "subscribers/editors.csv").read_text().splitlines()) - 1
    assert newest["channels"]["newsletter"]["state"] == "done"
    assert newest["channels"]["newsletter"]["sent"] == readers
    assert newest["channels"]["column"]["sent"] == editors
    assert all(p["back_catalogue"] and p["channels"]["column"] is None for p in posts[1:])

    code, out, _ = cli("posts", "list")
    row = next(line for line in out.splitlines() if "The job is not" in line)
    assert re.match(r"\s*5\s+2026-11-26 09:30 EST\s", row), row  # author's zone, never cut
    assert f"send 1 done: {readers}/{readers} sent" in row
    assert "not sent (back catalogue)" in out


# --- replies: read state ------------------------------------------------------------------------


def _reply(conn, kind: str, words: str, sender: str = "reader@example.com") -> int:
    return db.replies.insert_reply(
        conn,
        {"kind": kind, "sender": sender, "subject": "Re: the column", "text": words, "raw": b"x"},
        [],
    )


def test_status_counts_unread_replies_from_people_and_read_marks_them(cli: Cli) -> None:
    engine = db.connect(database_url_of(cli.project))
    with engine.begin() as conn:
        first = _reply(conn, "comment", "Loved it.")
        _reply(conn, "editor_response", "Running it Saturday.", "ed@paper.example")
        _reply(conn, "unmatched", "   \n")  # no words: not a new reply
        _reply(conn, "unmatched", "Who is Harold?")
        _reply(conn, "bounce", "")  # handled by syndicate, not the author's to read
    code, out, _ = cli("status", "--json")
    assert json.loads(out)["replies"] == {"comment": 1, "editor_response": 1, "unmatched": 1}
    assert len(json.loads(out)["recent_replies"]) == 3

    code, out, _ = cli("replies", "read", str(first))
    assert code == 0 and "1 reply marked read" in out
    code, out, _ = cli("status")
    assert "Unread replies: 1 editor_response, 1 unmatched" in out

    code, _, err = cli("replies", "read", "999")
    assert code == 1 and "no reply 999" in one_error_line(err)
    code, _, err = cli("replies", "read")
    assert code == 1 and "--all" in one_error_line(err)

    code, out, _ = cli("replies", "list", "--unread", "--json")
    listed = json.loads(out)
    assert {r["kind"] for r in listed} == {"editor_response", "unmatched", "bounce"}
    # The author's zone (America/Toronto), to the second.
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-0[45]:00", r["received_at"]) for r in listed
    )
    code, out, _ = cli("replies", "list")
    assert (
        re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d E[SD]T", out) and "." not in out.split("\n")[3][:30]
    )

    assert cli("replies", "read", "--all")[0] == 0
    code, out, _ = cli("status", "--json")
    assert json.loads(out)["replies"] == {}


def test_a_database_of_this_version_without_read_at_gets_the_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = db.connect(url)
    with engine.begin() as conn:  # as a build before Alembic (schema_version 3) left it
        conn.execute(text("ALTER TABLE replies DROP COLUMN read_at"))
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("UPDATE meta SET value = '3' WHERE key = 'schema_version'"))
    with db.connect(url).begin() as conn:
        _reply(conn, "comment", "Still here.")
        assert db.replies.count_replies(conn) == {"comment": 1}


# --- one story per command ----------------------------------------------------------------------


def test_run_once_tells_one_story_by_default_logs_with_v_and_no_bar_with_q(cli: Cli) -> None:
    code, out, err = cli("run", "--once")
    assert code == 0
    assert "INFO" not in err, err  # the counts are not told twice
    summary = next(line for line in out.splitlines() if line.startswith("Send 1 (newsletter)"))
    assert re.search(r"\d+ sent, \d+ deferred, \d+ failed, \d+ skipped in \d+\.\d s$", summary)
    assert "send 1 newsletter" in err  # the progress bar

    set_setting(cli.project / "settings.toml", 'first_run = "newest"', 'first_run = "all"')
    empty_database(cli.project)
    code, out, err = cli("-q", "run", "--once")
    assert code == 0 and "Send 1 (newsletter)" in out
    assert "send 1 newsletter" not in err and "INFO" not in err

    empty_database(cli.project)
    code, out, err = cli("-v", "run", "--once")
    assert code == 0 and "INFO" in err
    for line in err.splitlines():  # one record per line, never wrapped mid-number
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INFO|WARNING|DEBUG)|send \d", line), line


# --- feed check and the word count --------------------------------------------------------------


def test_one_word_counter() -> None:
    assert render_text.count_words is column_text.count_words
    assert column_text.count_words("black and/or white") == 3


def test_feed_check_counts_words_as_the_column_does(cli: Cli) -> None:
    loaded = settings.load(cli.project / "settings.toml")
    parsed = feed.parse((ROOT / "examples" / "feed.xml").read_bytes(), "examples/feed.xml")
    _code, out, _ = cli("feed", "check", "--json")
    checked = {p["guid"]: p["words"] for p in json.loads(out)["posts"]}
    for post in parsed.posts:
        column = build_draft(post, loaded).word_count
        assert checked[post.guid] == column, post.title
        html = post.content_html if post.has_full_text else post.summary_html
        assert body_word_count(sanitize(html, post.link)) == column
    assert 826 in checked.values()


def test_feed_check_uses_the_feed_settings(cli: Cli) -> None:
    set_setting(cli.project / "settings.toml", "max_bytes = 10000000", "max_bytes = 1000")
    code, _, err = cli("feed", "check")
    assert code == 1 and "1000" in one_error_line(err)


# --- subscribers ---------------------------------------------------------------------------------


def test_subscribers_sync_json_is_one_document(cli: Cli) -> None:
    _code, out, _ = cli("subscribers", "sync", "--json")
    document = json.loads(out)
    assert [d["kind"] for d in document["lists"]] == ["reader", "editor"]
    assert document["lists"][0]["added"] >= 1


def test_an_import_keeps_names_and_spelling_already_on_the_list(cli: Cli) -> None:
    assert cli("subscribers", "sync")[0] == 0
    export = cli.project / "members.csv"
    export.write_text(
        "Email Address,First Name,Last Name\n"
        "MARGARET.HOLLOWAY@EXAMPLE.COM,Maggie,H\n"
        "new.person@example.com,New,Person\n"
    )
    _code, out, _ = cli("subscribers", "import", str(export), "--json")
    report = json.loads(out)
    assert report["added"] == 1
    [difference, spelling] = report["differences"]
    assert difference["line"] == 2 and "'Margaret Holloway'" in difference["message"]
    assert "'Maggie H'" in difference["message"]
    assert "written 'MARGARET.HOLLOWAY@" in spelling["message"]
    engine = db.connect(database_url_of(cli.project))
    with engine.connect() as conn:
        rows = {r.email_key: r for r in db.recipients.list_recipients(conn, RecipientKind.READER)}
    kept = rows["margaret.holloway@example.com"]
    assert (kept.email, kept.name) == ("margaret.holloway@example.com", "Margaret Holloway")


def test_the_authors_own_list_still_renames(tmp_path: Path) -> None:
    engine = db.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    readers = tmp_path / "readers.csv"
    readers.write_text("email,name\nann@example.com,Ann\n")
    subscribers.sync(engine, readers, RecipientKind.READER)
    readers.write_text("email,name\nann@example.com,Ann Lee\n")
    assert subscribers.sync(engine, readers, RecipientKind.READER).updated == 1


def test_unreadable_editor_preferences_are_reported_at_import(cli: Cli) -> None:
    press = cli.project / "press.csv"
    press.write_text(
        "email,name,publication,timezone,word_limit\n"
        "ed@paper.example,Ed Itor,The Paper,Americas/Toronto,about 700\n"
    )
    code, out, _ = cli("subscribers", "import", str(press), "--kind", "editor")
    assert code == 0
    assert "line 2:" in out and "'Americas/Toronto'" in out and "'about 700'" in out
    report = json.loads(cli("subscribers", "import", str(press), "--kind", "editor", "--json")[1])
    assert {p["line"] for p in report["problems"]} == {2}
    assert any("timezone" in p["message"] for p in report["problems"])
    engine = db.connect(database_url_of(cli.project))
    with engine.connect() as conn:
        [editor] = db.recipients.list_recipients(conn, RecipientKind.EDITOR)
    assert editor.email == "ed@paper.example"  # the row still lands


def test_the_daemon_logs_at_info_for_its_journal(project: Path) -> None:
    # Nothing to send, so the first tick is short; stopping cleanly is test_daemon's subject.
    set_setting(project / "settings.toml", 'first_run = "newest"', 'first_run = "none"')
    daemon = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(project / "settings.toml"), "run"],
        cwd=project,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        seen = []
        while time.monotonic() < deadline:
            line = daemon.stderr.readline() if daemon.stderr else ""
            if not line:
                break
            seen.append(line)
            if " INFO " in line:
                break
        assert any(" INFO " in line for line in seen), "".join(seen)
        daemon.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.communicate(timeout=60)  # drains stderr while the daemon finishes and stops
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
