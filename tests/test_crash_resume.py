"""kill -9 in the middle of a send, several times: nobody skipped, duplicates bounded.

The send runs as the real `syndicate send` command in a subprocess; the SMTP server (aiosmtpd)
runs in the test process and counts what it accepted.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syndicate import db
from tests.conftest import running_smtp
from tests.delivery_support import FaultyHandler, add_readers, newsletter_send, use_smtp

BATCH = 40
READERS = 1500
KILLS = 3
SYNDICATE = (sys.executable, "-m", "syndicate")
SEND = ("send", "latest", "--channel", "newsletter")


@pytest.fixture
def counting_server():
    with running_smtp(FaultyHandler()) as server:
        yield server


def _start_send(project: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*SYNDICATE, "--config", str(project / "settings.toml"), "-q", *SEND],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "300"},
    )


def _accepted(handler: FaultyHandler) -> int:
    with handler.lock:
        return sum(handler.delivered.values())


def test_send_killed_three_times_then_resumed_reaches_everyone(
    project: Path, counting_server
) -> None:
    controller, handler = counting_server
    use_smtp(project, controller.port, batch_size=BATCH, connections=2)
    _cfg, engine, send_id = newsletter_send(project)
    emails = set(add_readers(engine, READERS))
    rng = random.Random(5)

    for _ in range(KILLS):
        before = _accepted(handler)
        target = before + rng.randint(50, 450)
        process = _start_send(project)
        deadline = time.monotonic() + 60
        while _accepted(handler) < target and process.poll() is None:
            assert time.monotonic() < deadline, "the send made no progress"
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL, "the send ended before it was killed"
        with engine.connect() as conn:
            counts = db.deliveries.delivery_counts(conn, send_id)
        # At most two batches claimed: one at the transport, the next being composed.
        assert counts.get("sending", 0) <= 2 * BATCH
        assert counts.get("pending", 0) > 0

    final = _start_send(project)
    out, errors = final.communicate(timeout=120)
    assert final.returncode == 0, errors.decode()
    assert "sent, 0 deferred, 0 failed, 0 skipped" in " ".join(out.decode().split())

    delivered = handler.delivered
    readers = emails | {
        line.split(",")[0]
        for line in (project / "subscribers/readers.csv").read_text().splitlines()[1:]
    }
    assert set(delivered) == readers  # everyone, at least once
    duplicates = sum(n - 1 for n in delivered.values())
    # Only a message between DATA and its answer (one per connection) can arrive twice.
    assert duplicates <= KILLS * 2, duplicates
    with engine.connect() as conn:
        assert db.deliveries.delivery_counts(conn, send_id) == {"sent": len(readers)}
        assert db.sends.get_send(conn, send_id).state == "done"
