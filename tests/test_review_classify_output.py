"""Review finding on `syndicate inbound classify` (main, syndicate/cli/inbound.py, the lines
after `for name in ("post", "recipient", "sender", "subject", "addresses")`).

The author runs `classify` on a message that looks wrong; the message is a stranger's. Its
sender and subject are printed through rich with markup on: a subject holding "[/]" ends the
command with a rich MarkupError traceback instead of the classification, "[link=…]" puts a
hyperlink of the stranger's choosing in the author's terminal, and an RFC 2047 encoded-word
carries raw escape sequences (ESC) to it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run_cli

MESSAGE = (
    "From: Stranger <stranger@example.net>\r\n"
    "To: author@example.com\r\n"
    "Subject: {subject}\r\n"
    "Message-ID: <hostile-1@example.net>\r\n"
    "Date: Wed, 02 Dec 2026 07:00:00 +0000\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Hello.\r\n"
)


@pytest.mark.parametrize(
    ("subject", "shown"),
    [
        ("Your column [/] is great", "Your column [/] is great"),
        ("[link=https://evil.example/]Unsubscribe me[/link]", "[link=https://evil.example/]"),
        ("=?utf-8?q?Hi_=1B]0;pwned=1B\\_there?=", None),
    ],
    ids=["closing-tag", "link-markup", "escape-in-encoded-word"],
)
def test_classify_prints_a_strangers_subject_as_text(
    project: Path, tmp_path: Path, subject: str, shown: str | None
) -> None:
    eml = tmp_path / "hostile.eml"
    eml.write_bytes(MESSAGE.format(subject=subject).encode())
    done = run_cli(project, "inbound", "classify", str(eml))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-1500:]
    assert "\x1b" not in done.stdout, f"raw escape sequence written: {done.stdout!r}"
    [line] = [line for line in done.stdout.splitlines() if line.strip().startswith("subject:")]
    if shown is not None:
        assert shown in line, f"the subject was read as rich markup: {line!r}"
