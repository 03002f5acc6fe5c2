"""`syndicate preview … --channel newsletter`: every form of the edition, and --open."""

from __future__ import annotations

import sys
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from tests.support.cli import run_cli, run_process
from tests.test_demo import read_outbox


@pytest.fixture
def ran(project: Path) -> Path:
    assert run_cli(project, "run", "--once").returncode == 0
    return project


def test_formats_by_option_and_by_suffix(ran: Path) -> None:
    before = len(read_outbox(ran))
    html = run_cli(ran, "preview", "latest", "--format", "html")
    assert html.returncode == 0, html.stderr
    assert html.stdout.lstrip().startswith("<!DOCTYPE html>")
    assert "jane@example.com" in html.stdout and "%%" not in html.stdout  # filled for the author

    text = run_cli(ran, "preview", "latest")
    assert text.returncode == 0 and "Reply to this email and it reaches Jane Marlowe" in text.stdout
    assert "<p" not in text.stdout

    out = ran / "previews" / "edition.eml"
    eml = run_cli(ran, "preview", "latest", "--out", str(out))
    assert eml.returncode == 0, eml.stderr
    assert "HTML part:" in eml.stdout and "95,000 bytes allowed" in eml.stdout
    raw = out.read_bytes()
    assert b"\r\n" in raw  # exactly what the SMTP transport would send
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert message["Subject"] == "The job is not the work — and that’s the point"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_body(("html",)) is not None and message.get_body(("plain",)) is not None

    forced = run_cli(ran, "preview", "latest", "--format", "txt", "--out", str(ran / "x.html"))
    assert forced.returncode == 0 and not (ran / "x.html").read_text().startswith("<")

    unknown = run_cli(ran, "preview", "latest", "--format", "pdf")
    assert unknown.returncode != 0 and "--format 'pdf' is not known" in unknown.stderr
    assert "eml, html, txt" in unknown.stderr
    assert len(read_outbox(ran)) == before  # a preview sends and records nothing


def test_open_writes_html_and_hands_it_to_the_browser(
    ran: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$BROWSER is the standard way to choose the browser; here it records what it was given."""
    opened = tmp_path / "opened.txt"
    recorder = tmp_path / "browser.py"
    recorder.write_text(
        f"import sys, pathlib\npathlib.Path({str(opened)!r}).write_text(sys.argv[1])\n"
    )
    monkeypatch.setenv("BROWSER", f"{sys.executable} {recorder} %s")
    # A process of its own: webbrowser reads $BROWSER once per process.
    result = run_process(ran, "preview", "latest", "--channel", "newsletter", "--open")
    assert result.returncode == 0, result.stderr
    uri = opened.read_text()
    assert uri.startswith("file:///") and uri.endswith("-newsletter.html")
    page = Path(uri.removeprefix("file://"))
    assert page.read_text().lstrip().startswith("<!DOCTYPE html>")
    assert f"Wrote {page}" in result.stdout.replace("\n", "")
