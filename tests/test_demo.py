"""The README's first command, end to end, in a temporary copy of the project."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.project import set_setting


def read_outbox(project: Path) -> dict[str, object]:
    parser = BytesParser(policy=policy.default)
    return {
        p.name: parser.parsebytes(p.read_bytes())
        for p in sorted((project / "outbox").glob("*.eml"))
    }


def test_demo_delivers_newest_post_once_to_every_reader_and_editor(project: Path) -> None:
    result = run_cli(project, "run", "--once")
    assert result.returncode == 0, result.stderr
    messages = read_outbox(project)
    readers = (project / "subscribers/readers.csv").read_text().strip().splitlines()[1:]
    editors = (project / "subscribers/editors.csv").read_text().strip().splitlines()[1:]
    assert len(messages) == len(readers) + len(editors)

    to = sorted(str(m["To"].addresses[0].addr_spec) for m in messages.values())
    expected = sorted(line.split(",")[0] for line in readers + editors)
    assert to == expected

    newest = "The job is not the work — and that’s the point"
    subjects = {m["Subject"] for m in messages.values()}
    assert subjects == {newest, f"Column: {newest}"}
    for name, msg in messages.items():
        for header in ("From", "To", "Subject", "Date", "Message-ID", "Reply-To", "List-Id"):
            assert msg[header], f"{name} lacks {header}"
        assert msg["Message-ID"].endswith("@notes.example.com>")
        assert "+" in msg["Reply-To"].addresses[0].username, name
        if msg["Subject"].startswith("Column: "):
            # An editor's draft: its own list, and no newsletter unsubscribe banner.
            assert msg["List-Id"] == "Notes from the Margin column <column.notes.example.com>"
            assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
        else:
            assert msg["List-Id"] == "Notes from the Margin <newsletter.notes.example.com>"
            assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert "<https://notes.example.com/newsletter/unsubscribe/" in msg["List-Unsubscribe"]
            assert "<mailto:replies+" in msg["List-Unsubscribe"]
        plain = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        assert plain is not None and html is not None, name
        html_text = html.get_content()
        assert 'style="' in html_text
        assert "<script" not in html_text.lower()
        assert "%%" not in html_text and "%%" not in plain.get_content()

    second = run_cli(project, "run", "--once")
    assert second.returncode == 0, second.stderr
    assert len(read_outbox(project)) == len(messages)
    assert "Nothing to send" in second.stdout


def test_reader_edition_is_personal_and_column_has_draft_lines(project: Path) -> None:
    assert run_cli(project, "run", "--once").returncode == 0
    messages = read_outbox(project)
    zoe = next(
        m for m in messages.values() if m["To"].addresses[0].addr_spec == "zoe.perez@example.org"
    )
    assert zoe["To"].addresses[0].display_name == "Zoë Pérez"
    assert "zoe.perez@example.org" in zoe.get_body(("html",)).get_content()
    assert zoe["Precedence"] == "bulk"

    sam = next(
        m
        for m in messages.values()
        if m["To"].addresses[0].addr_spec == "opinion@dailyherald.example.com"
    )
    text = sam.get_body(("plain",)).get_content()
    assert text.startswith("Hi Sam,")
    lines = [line for line in text.splitlines() if line.strip()]
    slug_at = lines.index("JOB-NOT-WORK/")
    assert lines[slug_at + 1] == "FOR RELEASE: UPON RECEIPT"
    assert lines[slug_at + 2].startswith("Eds: ") and " words." in lines[slug_at + 2]
    assert lines[slug_at + 3] == "The job is not the work — and that’s the point"
    assert lines[slug_at + 4] == "By Jane Marlowe"
    assert "-30-" in lines
    attachments = list(sam.iter_attachments())
    # Sam's row in editors.csv asks for "txt docx".
    assert [a.get_filename() for a in attachments] == ["job-not-work.txt", "job-not-work.docx"]
    assert attachments[0].get_content().startswith("JOB-NOT-WORK/")


def test_broken_setting_is_one_clear_line_and_nothing_is_written(project: Path) -> None:
    config = project / "settings.toml"
    set_setting(config, 'kind = "outbox"', 'kind = "pigeon"')
    set_setting(config, "timeout_seconds = 20", 'timeout_seconds = "soon"')
    result = run_cli(project, "run", "--once")
    assert result.returncode == 1
    assert "settings.toml" in result.stderr
    assert "transport.kind" in result.stderr and "'outbox', 'smtp' or 'sendgrid'" in result.stderr
    assert "feed.timeout_seconds" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "outbox").exists()
    assert not (project / "syndicate.db").exists()


def test_a_misspelt_placeholder_is_caught_when_settings_load(project: Path) -> None:
    set_setting(project / "settings.toml", 'subject = "{title}"', 'subject = "{titel}"')
    result = run_cli(project, "run", "--once")
    assert result.returncode == 1
    assert "channels.newsletter.subject: unknown placeholder {titel}" in result.stderr
    assert not (project / "outbox").exists()


def test_unknown_key_is_named(project: Path) -> None:
    set_setting(project / "settings.toml", "[feed]\n", "[feed]\nsorce = 'x'\n")
    result = run_cli(project, "status")
    assert result.returncode == 1
    assert "feed.sorce: unknown key" in result.stderr


def test_feed_check_json_lists_posts_and_problems(project: Path) -> None:
    import json

    result = run_cli(project, "feed", "check", str(project / "examples/feed.xml"), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["posts"]) == 5
    assert data["problems"] == []
    first = data["posts"][0]
    assert set(first) >= {"guid", "title", "link", "published", "words"}
    assert first["guid"] == "https://blog.example.com/?p=4127"
    assert 700 < first["words"] < 1000


def test_preview_writes_html_without_sending(project: Path) -> None:
    assert run_cli(project, "run", "--once").returncode == 0
    before = len(read_outbox(project))
    out = project / "preview.html"
    result = run_cli(project, "preview", "latest", "--channel", "newsletter", "--out", str(out))
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert "<h1" in html and "The job is not the work" in html
    assert len(read_outbox(project)) == before
    missing = run_cli(project, "preview", "no-such-post")
    assert missing.returncode == 1 and "no post 'no-such-post'" in missing.stderr
