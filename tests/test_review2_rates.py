"""Review: `rate_per_hour` is a provider's quota; slots a process reserved but never used must
not count against it (README: "rate_per_hour for a provider's quota", "hold for all workers
together")."""

from __future__ import annotations

import os
from pathlib import Path

from syndicate import db
from syndicate.delivery.throttle import SharedThrottle


def _url(tmp_path: Path) -> str:
    return os.environ.get("SYNDICATE_DATABASE_URL") or f"sqlite:///{tmp_path / 'rates.db'}"


def test_three_messages_from_three_processes_fit_an_hourly_quota_of_twenty(
    tmp_path: Path,
) -> None:
    """Three processes (a send of one reader, the approval preview, a desk reply) each send
    one message under `rate_per_hour = 20`, `rate_per_second = 0`. Each throttle reserves ten
    of the hour's slots at once and uses one: the third message waits an hour."""
    engine = db.connect(_url(tmp_path))
    waits: list[float] = []
    try:
        for _process in range(3):
            SharedThrottle(engine, "smtp quota", 0.0, 20, sleep=waits.append).acquire()
    finally:
        engine.dispose()
    assert waits == [] or max(waits) < 1.0, f"3 of 20 messages this hour waited {max(waits):.0f} s"


def test_three_notices_under_an_hourly_quota_of_twenty_all_arrive(project: Path) -> None:
    """The same through the runtime's transport (every notice takes a new one since the shared
    limit landed): three notices to the author, `rate_per_hour = 20`, a real SMTP server. The
    third sits in the throttle for an hour."""
    import threading
    from datetime import UTC, datetime

    from syndicate import settings
    from syndicate.delivery import notices
    from syndicate.delivery.message import Mailbox
    from syndicate.runtime import Runtime
    from tests.support.smtp import running_smtp
    from tests.test_workers import use_sink
    from tests.test_workers_rate import ArrivalSink

    sink = ArrivalSink()
    with running_smtp(sink) as (controller, _):
        use_sink(project, controller.port)
        config = project / "settings.toml"
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("rate_per_hour = 0", "rate_per_hour = 20", 1))
        runtime = Runtime(settings.load(config))

        def three() -> None:
            for number in range(3):
                message = notices.notice(
                    sender=Mailbox("Desk", "desk@example.com"),
                    to=Mailbox("Author", "author@example.com"),
                    subject=f"Notice {number}",
                    text="A reader wrote.",
                    date=datetime.now(UTC),
                    label="notice",
                    number=number,
                )
                notices.send(runtime.transport(), message)

        worker = threading.Thread(target=three, daemon=True)  # left asleep if it hangs
        worker.start()
        worker.join(timeout=30)
        arrived = len(sink.arrivals)
    assert arrived == 3, f"{arrived} of 3 notices arrived in 30 s under a quota of 20 an hour"


def test_sigterm_while_the_hourly_quota_is_used_up_stops_the_send_promptly(
    project: Path,
) -> None:
    """README "Interrupting a send": SIGTERM finishes the batch in flight and prints one line.
    With `rate_per_hour = 2` and five readers, the batch in flight has three messages waiting
    for the next hour: the process sleeps in the throttle instead of giving them back."""
    import signal
    import subprocess
    import sys
    import time

    from tests.support.cli import run_cli
    from tests.support.smtp import running_smtp
    from tests.test_workers import readers, use_sink
    from tests.test_workers_rate import ArrivalSink

    readers(project, 5)
    sink = ArrivalSink()
    with running_smtp(sink) as (controller, _):
        use_sink(project, controller.port)
        config = project / "settings.toml"
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("rate_per_hour = 0", "rate_per_hour = 2", 1))
        assert run_cli(project, "-q", "run", "--once").returncode == 0
        send = subprocess.Popen(
            [sys.executable, "-m", "syndicate", "--config", str(config), "send", "latest"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while len(sink.arrivals) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        send.send_signal(signal.SIGTERM)
        try:
            send.communicate(timeout=30)
            stopped = True
        except subprocess.TimeoutExpired:
            stopped = False
            send.kill()
            send.communicate()
    assert len(sink.arrivals) == 2
    assert stopped, "a SIGTERM'd send was still waiting for the hourly quota after 30 s"
