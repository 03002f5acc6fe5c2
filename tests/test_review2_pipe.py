"""Review: the MTA pipe (`inbound receive`) under the shared rate limit. A reader's comment is
filed, then forwarded to the author from the pipe; when the hour's quota is used up the pipe
must not sit in the throttle for up to an hour (Postfix's command_time_limit is 1000 s; the
forward can wait for the daemon's retry_forwards, as it does when the relay is down)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.inbound import edit, env, fixture, replies, sent_project, use_smtp
from tests.support.smtp import running_smtp
from tests.test_workers_rate import ArrivalSink


def test_a_pipe_whose_forward_finds_the_hourly_quota_used_returns_at_once(
    tmp_path: Path,
) -> None:
    project = sent_project(tmp_path / "project")
    sink = ArrivalSink()
    with running_smtp(sink) as (controller, _):
        use_smtp(project, controller.port)
        edit(project / "settings.toml", "rate_per_hour = 0", "rate_per_hour = 1")
        argv = [sys.executable, "-m", "syndicate", "--config", str(project / "settings.toml")]
        first = subprocess.run(
            [*argv, "inbound", "receive"],
            cwd=project,
            input=fixture("apple_en.eml"),
            capture_output=True,
            env=env(),
            timeout=60,
        )
        assert first.returncode == 0, first.stderr.decode()
        assert len(sink.arrivals) == 1  # the first comment reached the author
        try:
            second = subprocess.run(
                [*argv, "inbound", "receive"],
                cwd=project,
                input=fixture("gmail_en.eml"),
                capture_output=True,
                env=env(),
                timeout=30,
            )
            returned = second.returncode
        except subprocess.TimeoutExpired:
            returned = None
    assert len(replies(project)) == 2  # the second comment was filed before the wait
    assert returned == 0, "the pipe was still waiting for the next hour's slot after 30 s"
