"""Review finding on the daemon election (branch `runtime-daemon`,
syndicate/scheduling/election.py `DaemonLock.held_while`).

A one-off run (`syndicate run --once`; on SQLite also `syndicate send`) holds the lock through
`held_while`. When its PostgreSQL session is cut while it works (a server restart, a proxy's
idle timeout, pg_terminate_backend), the advisory lock goes with it and another daemon is
elected at once; the heartbeat thread sees the loss but only logs "this run should stop": the
body runs on and the block ends as if it had held the lock throughout. Two daemons plan at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from syndicate import db
from syndicate.scheduling.election import LockHeld, lock_for
from tests.support.cli import run_cli
from tests.support.waiting import wait_until


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[db.Engine]:
    """A fresh schema on the suite's PostgreSQL (tests/conftest.py), whichever database the
    suite runs on."""
    engine = db.connect(postgres_url)
    yield engine
    engine.dispose()


# The key election.py locks: this database and schema's daemon election.
_OUR_KEY = (
    "hashtextextended(current_database() || '.' || current_schema() || '.syndicate.daemon', 0)"
)


def _cut_election_sessions(engine: db.Engine) -> int:
    """What a server restart, a proxy's timeout or kill -9 does to the elected daemon's
    session: it ends, and the server frees its advisory lock."""
    with engine.connect() as conn:
        cut = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                f"AND ((classid::bigint << 32) | objid::bigint) = {_OUR_KEY}"
            )
        ).scalar_one()
        conn.commit()
    return int(cut)


def test_a_one_off_run_that_loses_its_election_does_not_end_as_if_it_held_it(
    pg_engine: db.Engine,
) -> None:
    first = lock_for(pg_engine, heartbeat_seconds=0.1)
    second = lock_for(pg_engine, heartbeat_seconds=0.1)
    # The run must learn it is no longer the daemon (LockHeld), not end as if it were.
    with pytest.raises(LockHeld), first.held_while():
        assert _cut_election_sessions(pg_engine) == 1
        second.acquire()  # elected at once: the server freed the advisory lock
        wait_until(lambda: not first.held, timeout=10, what="the first to see its loss")
        # ...and the one-off run's planning and sending go on here, beside the second.
    second.release()


def test_status_does_not_call_a_daemon_killed_by_the_server_running(
    pg_engine: db.Engine, project: Path
) -> None:
    """The second finding: after the elected daemon dies (kill -9, its session cut), its row
    stays until another daemon wins, and `syndicate status` (and the desk's home) keep saying
    "Daemon: running" though nothing holds the advisory lock: nothing plans or sends, and the
    author is told all is well. Whether the holder is alive is known to the server (pg_locks)."""
    lock = lock_for(pg_engine, heartbeat_seconds=0.1)
    lock.acquire()
    assert _cut_election_sessions(pg_engine) == 1  # what kill -9 of the daemon does
    status = run_cli(project, "status")
    assert status.returncode == 0, status.stderr[-1500:]
    [line] = [line for line in status.stdout.splitlines() if line.startswith("Daemon:")]
    assert "running" not in line or "not running" in line, (
        f"no daemon holds the election, yet status says: {line!r}"
    )
