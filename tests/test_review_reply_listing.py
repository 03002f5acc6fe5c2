"""Review finding on the CLI's reply listings (main: syndicate/cli/status.py, the "New replies"
table; syndicate/cli/replies.py `list`): a stranger's subject, address and words go into rich
Table cells as markup. One message whose subject holds "[/]" makes `syndicate status` and
`syndicate replies list` end in a rich MarkupError traceback for as long as it is listed (the
author cannot see anything else those commands show); "[link=…]" puts a hyperlink of the
stranger's choosing in the author's terminal.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.cli import run_cli

HOSTILE = (
    b"From: Stranger <stranger@example.net>\r\n"
    b"To: author@example.com\r\n"
    b"Subject: Re: your column [/] [link=https://evil.example/]read me[/link]\r\n"
    b"Message-ID: <hostile-2@example.net>\r\n"
    b"Date: Wed, 02 Dec 2026 07:00:00 +0000\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Loved it [/] [link=https://evil.example/]really[/link].\r\n"
)


RECEIVE = ("inbound", "receive")


def _receive(project: Path, raw: bytes) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "syndicate",
            "--config",
            str(project / "settings.toml"),
            "inbound",
            "receive",
        ],
        cwd=project,
        input=raw,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-1500:]


def test_a_strangers_reply_cannot_break_status_or_replies_list(project: Path) -> None:
    _receive(project, HOSTILE)
    for command in (("status",), ("replies", "list")):
        done = run_cli(project, *command)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (
            f"`syndicate {' '.join(command)}`: {done.stderr[-800:]}"
        )
        assert "[/]" in done.stdout, f"the stranger's text was read as markup: {done.stdout}"
