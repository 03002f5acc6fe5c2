"""The provider's rate limit holds for every outgoing message, not only editions: notices sent
through the runtime's transport (forwards, answers, advisories, desk replies) take their slots
from the same limit in the database as a `syndicate send` running in another process.

Runs on the suite's database (SQLite file or PostgreSQL); the sink records each arrival.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from syndicate import settings
from syndicate.delivery import notices
from syndicate.delivery.message import Mailbox
from syndicate.delivery.throttle import SharedThrottle
from syndicate.models import DeliveryState
from syndicate.runtime import Runtime
from tests.conftest import run_cli, running_smtp, set_setting
from tests.test_workers import readers, use_sink
from tests.test_workers_rate import TOLERANCE, ArrivalSink, busiest_second

RATE = 10  # messages a second, editions and notices together
READERS = 40
THREADS = 5
NOTICES = 4 * THREADS


def _notices(runtime: Runtime, count: int, first: int, results: list[DeliveryState]) -> None:
    for number in range(first, first + count):
        message = notices.notice(
            sender=Mailbox("Desk", "desk@example.com"),
            to=Mailbox("Author", f"author{number}@example.com"),
            subject=f"Notice {number}",
            text="A reader wrote.",
            date=datetime.now(UTC),
            label="notice",
            number=number,
        )
        results.append(notices.send(runtime.transport(), message).state)


def test_notices_and_a_send_in_another_process_share_one_limit(project: Path) -> None:
    addresses = readers(project, READERS)
    sink = ArrivalSink()
    with running_smtp(sink) as (controller, _):
        use_sink(project, controller.port)
        config = project / "settings.toml"
        set_setting(config, "rate_per_second = 0", f"rate_per_second = {RATE}")
        set_setting(config, "batch_size = 20", "batch_size = 10")
        assert run_cli(project, "-q", "run", "--once").returncode == 0
        runtime = Runtime(settings.load(config))
        assert isinstance(runtime.transport().limiter, SharedThrottle)
        send = subprocess.Popen(
            [sys.executable, "-m", "syndicate", "--config", str(config), "-q", "send", "latest"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while len(sink.arrivals) < 3 and time.monotonic() < deadline and send.poll() is None:
            time.sleep(0.05)  # the notices go while the send is sending
        results: list[DeliveryState] = []
        threads = [
            threading.Thread(target=_notices, args=(runtime, NOTICES // THREADS, n * 100, results))
            for n in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        _, err = send.communicate(timeout=120)
        runtime.close()
    assert send.returncode == 0, err
    assert results == [DeliveryState.SENT] * NOTICES
    count = READERS + NOTICES
    assert len(sink.arrivals) == count == len(addresses) + NOTICES
    assert busiest_second(sink.arrivals) <= RATE + TOLERANCE, busiest_second(sink.arrivals)
    span = max(sink.arrivals) - min(sink.arrivals)
    assert (count - 1) / span <= RATE * 1.1, f"{count} messages in {span:.2f} s"
