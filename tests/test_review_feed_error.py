"""Review finding on the feed health line (branch `desk`, syndicate/feedwatch/health.py
`FeedHealth.line`, printed by syndicate/cli/status.py).

A hostile feed chooses its own error text: feedparser repeats the XML declaration's encoding
name, whatever bytes it holds, in its complaint ("document declared as …"), and that complaint
becomes the recorded error. `syndicate status` then writes the feed's escape sequences to the
author's terminal (an OSC 8 hyperlink to anywhere, hidden text, a changed window title).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from syndicate.errors import FeedError
from syndicate.feedwatch import watch
from syndicate.runtime import Runtime
from tests.conftest import set_setting
from tests.support.cli import run_cli
from tests.support.web import QuietHandler, serving_http
from tests.support.web_client import load_settings

ESC = "\x1b"
HOSTILE = (
    b'<?xml version="1.0" encoding="\x1b]8;;https://evil.example/\x1b\\'
    b'click to fix the feed\x1b]8;;\x1b\\\x1b[8m"?><rss><channel></channel></rss>'
)


class HostileFeed(QuietHandler):
    body: ClassVar[bytes] = HOSTILE

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@pytest.fixture
def hostile_feed() -> Iterator[str]:
    with serving_http(HostileFeed) as base:
        yield f"{base}/feed/"


def test_a_hostile_feeds_error_reaches_status_without_terminal_escapes(
    project: Path, hostile_feed: str
) -> None:
    set_setting(
        project / "settings.toml", 'source = "examples/feed.xml"', f'source = "{hostile_feed}"'
    )
    runtime = Runtime(load_settings(project))
    with pytest.raises(FeedError):
        watch.poll(runtime.engine, runtime.settings)
    runtime.engine.dispose()
    status = run_cli(project, "status")
    assert status.returncode == 0, status.stderr
    [line] = [line for line in status.stdout.splitlines() if line.startswith("Feed:")]
    assert "not a usable RSS" in line
    assert ESC not in status.stdout, (
        f"`syndicate status` wrote the feed's escape sequences to the terminal: {line!r}"
    )
