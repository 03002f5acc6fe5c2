"""Interruptions never double a reader's copy.

- Ctrl-C (SIGINT) or SIGTERM in `send` or `run --once`: the batch in flight is finished and
  recorded, one line says what was done and how to resume, the exit status is 130 or 143, and
  the resumed send gives nobody a second copy.
- kill -9: the journal (syndicate.journal) records each message as the server accepts it, so
  the next run re-sends at most the message each connection had in flight.

Every send here is the real `syndicate` command in a subprocess against a real aiosmtpd server
in the test process that counts each recipient it accepted.
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

from syndicate import journal, store
from tests.conftest import running_smtp
from tests.delivery_support import FaultyHandler, add_readers, newsletter_send, use_smtp

SYNDICATE = (sys.executable, "-m", "syndicate")
SEND = ("send", "latest", "--channel", "newsletter")
CONNECTIONS = 2


@pytest.fixture
def counting_server():
    with running_smtp(FaultyHandler()) as server:
        yield server


def _start(project: Path, *command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SYNDICATE, "--config", str(project / "settings.toml"), "-q", *command],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )


# The real command, `syndicate.cli.main()` as `python -m syndicate` runs it, with its imports
# (over a second of CPU) done before it is told to go: 21 starts must fit in the test's minute.
_PREWARMED = "import sys; from syndicate.cli import main; sys.stdin.readline(); main()"


def _prewarmed(project: Path, *command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _PREWARMED, "--config", str(project / "settings.toml"), *command],
        cwd=project,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )


def _go(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.flush()


def _accepted(handler: FaultyHandler) -> int:
    with handler.lock:
        return sum(handler.delivered.values())


def _wait_for(handler: FaultyHandler, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while _accepted(handler) < count:
        assert process.poll() is None, f"the send ended first: {process.communicate()}"
        assert time.monotonic() < deadline, "the send made no progress"
        time.sleep(0.002)


def _readers(project: Path, added: list[str]) -> set[str]:
    listed = (project / "subscribers/readers.csv").read_text().splitlines()[1:]
    return set(added) | {line.split(",")[0] for line in listed}


def _journal_lines(engine) -> list[journal.Accepted]:
    return journal.Journal.for_engine(engine).entries()


@pytest.mark.parametrize(
    ("command", "signum", "status"),
    [(SEND, signal.SIGINT, 130), (("run", "--once"), signal.SIGTERM, 143)],
    ids=["send-ctrl-c", "run-once-sigterm"],
)
def test_a_signal_finishes_the_batch_in_flight_and_the_resume_sends_no_copy(
    project: Path, counting_server, command: tuple[str, ...], signum: int, status: int
) -> None:
    controller, handler = counting_server
    use_smtp(project, controller.port, batch_size=40, connections=CONNECTIONS)
    _cfg, engine, send_id = newsletter_send(project)
    readers = _readers(project, add_readers(engine, 1500))

    process = _start(project, *command)
    _wait_for(handler, 200, process)
    process.send_signal(signum)
    out, errors = process.communicate(timeout=60)

    assert process.returncode == status, errors
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    name = signal.Signals(signum).name
    with engine.connect() as conn:
        counts = store.delivery_counts(conn, send_id)
    sent, left = counts["sent"], counts["pending"]
    assert lines[0] == (
        f"Interrupted by {name}: the batch in flight was finished and recorded; {sent:,} "
        f"message(s) sent in this run, {left:,} still to send. Run 'syndicate --config "
        f"{project / 'settings.toml'} -q {' '.join(command)}' to resume; nobody gets a message "
        "twice."
    )
    # Everything the server accepted is recorded, nothing is left claimed.
    assert sent == _accepted(handler) and 200 <= sent < len(readers)
    assert set(counts) == {"sent", "pending"}
    assert _journal_lines(engine) == []

    resumed = _start(project, *command)
    out, errors = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, errors
    assert readers <= set(handler.delivered)  # (run --once also sends the editors' column)
    assert max(handler.delivered.values()) == 1  # nobody got a second copy
    with engine.connect() as conn:
        assert store.delivery_counts(conn, send_id) == {"sent": len(readers)}


READERS_FOR_KILLS = 10_000
KILLS = 20
BATCH = 50


def test_twenty_kill_9s_lose_nobody_and_double_at_most_one_message_per_connection(
    project: Path, counting_server
) -> None:
    controller, handler = counting_server
    use_smtp(project, controller.port, batch_size=BATCH, connections=CONNECTIONS)
    _cfg, engine, send_id = newsletter_send(project)
    readers = _readers(project, add_readers(engine, READERS_FOR_KILLS))
    rng = random.Random(12)

    process = _prewarmed(project, "-q", *SEND)
    for _ in range(KILLS):
        _go(process)
        upcoming = _prewarmed(project, "-q", *SEND)
        _wait_for(handler, _accepted(handler) + rng.randint(1, 300), process)
        time.sleep(rng.random() * 0.01)  # a random moment, not just right after an answer
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL, "the send ended before it was killed"
        process = upcoming

    _go(process)
    out, errors = process.communicate(timeout=120)
    final = process
    assert final.returncode == 0, errors
    assert "sent, 0 deferred, 0 failed, 0 skipped" in " ".join(out.split())

    delivered = handler.delivered
    assert set(delivered) == readers  # 0 lost
    duplicates = sum(n - 1 for n in delivered.values())
    # Only a message between DATA and the server's answer can go twice: one per connection.
    assert duplicates <= CONNECTIONS * KILLS, duplicates
    with engine.connect() as conn:
        assert store.delivery_counts(conn, send_id) == {"sent": len(readers)}
        assert store.get_send(conn, send_id)["state"] == "done"
    assert _journal_lines(engine) == []
