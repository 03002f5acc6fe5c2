"""Outside text shown to the author (syndicate/cli/plain.py, every table of cli/tables.py, the
recorded feed error): a stranger's reply and a hostile feed are shown literally, never as rich
markup, and nothing in them reaches the terminal as a control sequence (ESC, CSI/OSC in their 7-
and 8-bit forms, CR, bidi overrides)."""

from __future__ import annotations

from pathlib import Path

import pytest

from syndicate.cli.plain import plain
from tests.support.cli import invoke

# What would drive a terminal: ESC (an OSC 8 hyperlink, a window title), 8-bit CSI, CR (a line
# drawn over), BEL, and the right-to-left override.
DRIVING = ("\x1b", "\x9b", "\r", "\x07", "\u202e")

REPLY = (
    b"From: Stranger <stranger@example.net>\r\n"
    b"To: author@example.com\r\n"
    # Encoded words carry what a raw header line could not: ESC, BEL, CR, C1, U+202E.
    b"Subject: =?utf-8?q?Hello_=1B]8;;https://evil.example/=1B\\click=1B]8;;=1B\\_"
    b"=1B]0;title=07_=C2=9B2J_over=0Dwritten_=E2=80=AEtxt.exe?=\r\n"
    b"Message-ID: <plain-1@example.net>\r\n"
    b"Date: Wed, 02 Dec 2026 07:00:00 +0000\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Words [bold]kept[/bold] as typed.\r\n"
)


def test_plain_removes_what_drives_a_terminal_and_keeps_the_words() -> None:
    assert plain("a\x1b[31mred\x9b2J\rb\tc\nd\x7f\u202eé [/]") == "a[31mred2Jb\tc\ndé [/]"
    assert plain(None) == "" and plain(7) == "7"


@pytest.mark.parametrize("command", [("status",), ("replies", "list")])
def test_a_strangers_subject_reaches_the_listing_without_control_sequences(
    project: Path, command: tuple[str, ...]
) -> None:
    received = invoke(project, "inbound", "receive", stdin=REPLY)
    assert received.returncode == 0, received.stderr
    done = invoke(project, *command)
    out = done.stdout.decode()
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr[-800:]
    assert not [c for c in DRIVING if c in out], f"control characters reached the terminal: {out!r}"
    words = "Hello" if command == ("status",) else "[bold]kept[/bold]"
    assert words in out, out


FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Hostile</title><link>https://blog.example/</link>
<description>d</description>
<item><title>Week [/] notes &#x9b;2J &#x202e;fdp.exe</title><link>https://blog.example/1</link>
<guid>https://blog.example/1</guid><pubDate>Tue, 01 Dec 2026 07:00:00 +0000</pubDate>
<description>Body.</description></item>
</channel></rss>
"""


def test_feed_check_shows_a_hostile_title_literally(project: Path, tmp_path: Path) -> None:
    feed = tmp_path / "hostile.xml"
    feed.write_text(FEED, encoding="utf-8")
    done = invoke(project, "feed", "check", str(feed))
    out = done.stdout.decode()
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr[-800:]
    assert "Week [/] notes" in out and "fdp.exe" in out, out
    assert "\x9b" not in out and "\u202e" not in out, repr(out)


def test_a_feed_error_is_recorded_as_one_bounded_line_without_control_characters(
    project: Path,
) -> None:
    from datetime import UTC, datetime

    from syndicate import db
    from syndicate.db.feed_checks import ERROR_CHARS, CheckOutcome
    from syndicate.runtime import Runtime
    from tests.support.web_client import load_settings

    runtime = Runtime(load_settings(project))
    hostile = "bad encoding \x1b]0;title\x07\x9b2J " + "x" * 5000 + "\nsecond line"
    with runtime.engine.begin() as conn:
        db.feed_checks.record_check(
            conn, "feed", datetime.now(UTC), CheckOutcome.FAILED, error=hostile
        )
    with runtime.engine.connect() as conn:
        recorded = db.feed_checks.latest(conn, "feed")
    runtime.close()
    assert recorded is not None
    assert recorded.error.startswith("bad encoding ]0;title 2J xxx")
    assert len(recorded.error) == ERROR_CHARS
    assert not [c for c in recorded.error if ord(c) < 32 or 0x7F <= ord(c) <= 0x9F]
