"""Every poll of the feed is recorded (time by the runtime's clock, outcome, HTTP status, the
one-line error, new posts), and `syndicate status` and the desk's home page show the same line
made by one function. The feed is a real HTTP server answering 500, too late, malformed XML,
then a good feed."""

from __future__ import annotations

import contextlib
import html
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from syndicate import db
from syndicate.db.feed_checks import CheckOutcome
from syndicate.errors import FeedError
from syndicate.feedwatch import health, watch
from syndicate.runtime import Runtime
from syndicate.scheduling import jobs
from tests.conftest import set_setting
from tests.support.cli import run_cli
from tests.support.desk import SECRET, client_for, login, set_password, use_base_url
from tests.support.scheduling import Clock
from tests.support.web import QuietHandler, serving_http
from tests.support.web_client import load_settings
from tests.test_feed import catalogue, rss

T1 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TIMEOUT = 0.5


class SickFeed(QuietHandler):
    """Answers each GET with the next of `answers`: an HTTP status, "slow" or "malformed"."""

    answers: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        answer = SickFeed.answers.pop(0)
        if answer == "slow":
            time.sleep(TIMEOUT * 3)
        body = rss(catalogue(3)) if answer in ("200", "slow") else b""
        if answer == "malformed":
            body = b"this is <<< not xml at all &&&"
        status = int(answer) if answer.isdigit() else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client stopped waiting (the timeout)
            self.wfile.write(body)


@pytest.fixture
def sick_feed() -> Iterator[str]:
    SickFeed.answers = ["500", "slow", "malformed", "200"]
    with serving_http(SickFeed) as base:
        yield f"{base}/feed/"


@pytest.fixture
def watched(project: Path, sick_feed: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", SECRET)
    config = project / "settings.toml"
    set_setting(config, 'source = "examples/feed.xml"', f'source = "{sick_feed}"')
    set_setting(config, "timeout_seconds = 20", f"timeout_seconds = {TIMEOUT}")
    cfg = load_settings(project)
    return cfg, db.connect(cfg.database_url)


def _all(conn, source: str):
    return db.feed_checks.recent_checks(conn, source, limit=100)


def test_every_poll_is_recorded_and_both_views_say_the_same_line(
    watched, project: Path, sick_feed: str
) -> None:
    cfg, engine = watched
    zone = cfg.zone
    times = [T1 + timedelta(minutes=15 * n) for n in range(4)]
    expected_errors = [
        "the server answered HTTP 500",
        f"no answer within {TIMEOUT:g} s (feed.timeout_seconds)",
        "not a usable RSS or Atom feed",
    ]
    for at, error in zip(times[:3], expected_errors, strict=True):
        with pytest.raises(FeedError, match=re.escape(error)):
            watch.poll(engine, cfg, at)
    with engine.connect() as conn:
        recorded = _all(conn, sick_feed)[::-1]
        assert db.posts.known_guids(conn, ["https://blog.example.com/?p=100"]) == set()
    assert [c.outcome for c in recorded] == [CheckOutcome.FAILED] * 3
    assert [c.checked_at for c in recorded] == times[:3]
    assert [c.http_status for c in recorded] == [500, None, 200]
    for check, error in zip(recorded, expected_errors, strict=True):
        assert error in check.error and "\n" not in check.error
    assert [c.failures_in_row for c in recorded] == [1, 2, 3]
    assert {c.failing_since for c in recorded} == {times[0]}

    failing = health.health(engine, cfg)
    assert failing.failing and failing.failing_since == times[0]
    line = failing.line(zone)
    assert line.startswith(f"Feed: {sick_feed} (last checked 2026-12-01 04:30 EST; ")
    assert "last success never" in line
    assert "Last error 2026-12-01 04:30 EST: " in line and "not a usable RSS" in line
    assert line.endswith(
        "The feed has been failing since 2026-12-01 04:00 EST (3 checks in a row)."
    )

    # `syndicate status` prints that line, and says it in JSON; the desk shows the same line.
    status = run_cli(project, "status")
    assert status.returncode == 0, status.stderr
    assert line in status.stdout.splitlines()
    as_json = json.loads(run_cli(project, "status", "--json").stdout)["feed"]
    assert as_json["outcome"] == "failed" and as_json["http_status"] == 200
    assert as_json["failing_since"] == times[0].isoformat()
    assert as_json["last_success_at"] is None and "not a usable" in as_json["last_error"]
    use_base_url(project)
    set_password(project)
    client = client_for(project)
    login(client)
    page = client.get("/desk/").text
    shown = re.search(r'<p id="feed-health" class="error">(.*?)</p>', page, re.S)
    assert shown, page
    assert html.unescape(shown.group(1)) == line

    # The feed recovers: three new posts, the error stays visible with its time.
    report = watch.poll(engine, cfg, times[3])
    assert len(report.new_posts) == 3
    recovered = health.health(engine, cfg)
    assert not recovered.failing and recovered.failing_since is None
    assert recovered.last_check and recovered.last_check.outcome is CheckOutcome.OK
    assert (recovered.last_check.http_status, recovered.last_check.new_posts) == (200, 3)
    assert recovered.last_error and recovered.last_error.checked_at == times[2]
    line = recovered.line(zone)
    assert line.startswith(f"Feed: {sick_feed} (last checked 2026-12-01 04:45 EST). Last error ")
    assert "failing since" not in line
    page = client.get("/desk/").text
    shown = re.search(r'<p id="feed-health" class="muted">(.*?)</p>', page, re.S)
    assert shown and html.unescape(shown.group(1)) == line


def test_the_daemon_records_its_checks_on_the_runtimes_clock(watched, sick_feed: str) -> None:
    cfg, engine = watched
    SickFeed.answers = ["503", "200", "200"]
    clock = Clock(datetime(2031, 5, 6, 7, 8, tzinfo=UTC))
    runtime = Runtime(cfg, engine=engine, clock=clock)
    report = jobs.poll_feed(runtime)
    assert report.feed_error and "HTTP 503" in report.feed_error
    clock.advance(minutes=15)
    assert not jobs.poll_feed(runtime).feed_error
    with engine.connect() as conn:
        recorded = _all(conn, sick_feed)[::-1]
    assert [(c.checked_at, c.outcome, c.http_status) for c in recorded] == [
        (datetime(2031, 5, 6, 7, 8, tzinfo=UTC), CheckOutcome.FAILED, 503),
        (datetime(2031, 5, 6, 7, 23, tzinfo=UTC), CheckOutcome.OK, 200),
    ]
    # One failure is the last error, not "failing".
    line = health.health(engine, cfg).line(cfg.zone)
    assert "Last error 2031-05-06 03:08 EDT: " in line and "HTTP 503" in line
    assert "failing since" not in line


def test_old_checks_are_pruned_but_the_newest_success_and_the_run_of_failures_stay(
    tmp_path: Path,
) -> None:
    engine = db.connect(f"sqlite:///{tmp_path / 'checks.db'}")
    at = [T1 + timedelta(minutes=n) for n in range(8)]
    with engine.begin() as conn:
        record = db.feed_checks.record_check
        record(conn, "feed", at[0], CheckOutcome.OK, http_status=200, new_posts=1, keep=3)
        for n in range(1, 7):
            record(conn, "feed", at[n], CheckOutcome.FAILED, error=f"down {n}\nmore", keep=3)
        kept = _all(conn, "feed")
        assert [c.checked_at for c in kept] == [at[6], at[5], at[4], at[0]]
        last = db.feed_checks.latest(conn, "feed")
        assert last is not None
        assert (last.failures_in_row, last.failing_since, last.error) == (6, at[1], "down 6")
        assert db.feed_checks.latest_success(conn, "feed").checked_at == at[0]
        record(conn, "feed", at[7], CheckOutcome.NOT_MODIFIED, http_status=304, keep=3)
        assert [c.checked_at for c in _all(conn, "feed")] == [at[7], at[6], at[5]]
        assert db.feed_checks.latest(conn, "other") is None
    assert db.feed_checks.KEEP_PER_SOURCE == 500  # README: "the newest 500 per feed are kept"
