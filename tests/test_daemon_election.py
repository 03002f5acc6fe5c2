"""Exactly one daemon plans and sends, elected through the database: on PostgreSQL a
session-level advisory lock that the server frees with its holder's session (a kill -9 too), on
SQLite (one machine) the lock row and its heartbeat. Real `syndicate run` processes, on both."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from syndicate import db, machine, settings
from syndicate.runtime import Runtime
from syndicate.scheduling.election import LockHeld
from tests.support.scheduling import configure

# Long enough that a holder's row never goes stale during a test: a takeover here is the
# election's doing (the session freed, or the pid gone), never the heartbeat's age.
HEARTBEAT = 1
NEVER_STALE = 600


@pytest.fixture(params=["sqlite", "postgres"])
def kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which database the project uses (whichever the suite runs on)."""
    if request.param == "postgres":
        request.getfixturevalue("postgres_url")  # SYNDICATE_DATABASE_URL, inherited by children
    else:
        monkeypatch.delenv("SYNDICATE_DATABASE_URL", raising=False)  # the project's own file
    return str(request.param)


@pytest.fixture
def quiet(project: Path, kind: str) -> Path:
    """A project whose daemon has nothing to send (first run: none) and beats every second."""
    configure(
        project,
        feed__first_run="none",
        daemon__heartbeat_seconds=HEARTBEAT,
        daemon__stale_after_missed=NEVER_STALE,
    )
    return project


class Started:
    """A real `syndicate run` in its own process, its stderr in a file we can read meanwhile."""

    def __init__(self, project: Path, *args: str) -> None:
        self.log = project / f"daemon-{time.monotonic_ns()}.log"
        self.handle = self.log.open("wb")
        command = [sys.executable, "-m", "syndicate", "-c", str(project / "settings.toml")]
        self.process = subprocess.Popen(
            [*command, "run", *args], cwd=project, stdout=self.handle, stderr=subprocess.STDOUT
        )
        self.pid = self.process.pid

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        finally:
            self.handle.close()


@pytest.fixture
def started(quiet: Path) -> Iterator[Callable[..., Started]]:
    processes: list[Started] = []

    def start(*args: str) -> Started:
        processes.append(Started(quiet, *args))
        return processes[-1]

    yield start
    for one in processes:
        if one.process.poll() is None:
            one.process.kill()
        one.process.wait(timeout=30)
        one.handle.close()


def holder_pid(project: Path) -> int | None:
    """The pid in the lock row (None when no daemon holds the database)."""
    engine = _engines.get(project) or _engines.setdefault(
        project, db.connect(_settings(project).database_url)
    )
    with engine.connect() as conn:
        holder = db.locks.lock_holder(conn)
    return holder.pid if holder else None


_engines: dict[Path, db.Engine] = {}


@pytest.fixture(autouse=True)
def _close_engines() -> Iterator[None]:
    yield
    while _engines:
        _engines.popitem()[1].dispose()


def _settings(project: Path) -> settings.Settings:
    return settings.load(project / "settings.toml")


def until(condition: Callable[[], object], seconds: float = 90) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_two_daemons_started_at_once_one_runs_and_the_other_names_it(
    quiet: Path, started: Callable[..., Started]
) -> None:
    first, second = started(), started()
    assert until(lambda: first.process.poll() is not None or second.process.poll() is not None)
    loser, winner = (first, second) if first.process.poll() is not None else (second, first)
    assert loser.process.returncode == 1, loser.output
    assert until(lambda: holder_pid(quiet) == winner.pid), winner.output
    time.sleep(2 * HEARTBEAT)  # the winner keeps running: it was not refused a moment later
    assert winner.process.poll() is None, winner.output
    refusal = loser.output
    assert f"another syndicate daemon (pid {winner.pid} on {machine.name()}" in refusal
    assert "running since" in refusal and "--wait" in refusal
    assert "Traceback" not in refusal
    assert winner.stop() == 0, winner.output
    assert holder_pid(quiet) is None


def test_after_a_kill_9_of_the_holder_a_waiting_daemon_takes_over(
    quiet: Path, started: Callable[..., Started], kind: str
) -> None:
    holder = started()
    assert until(lambda: holder_pid(quiet) == holder.pid), holder.output
    waiting = started("--wait")
    assert until(lambda: "waiting for it to stop" in waiting.output), waiting.output
    os.kill(holder.pid, signal.SIGKILL)
    holder.process.wait(timeout=30)
    killed_at = time.monotonic()
    # Its row is still fresh (heartbeats every second, stale after ten minutes): only the
    # election (PostgreSQL: the session ended; SQLite: the pid is gone) lets the next one in.
    assert until(lambda: holder_pid(quiet) == waiting.pid, 60), waiting.output
    assert time.monotonic() - killed_at < 60
    assert waiting.process.poll() is None, waiting.output
    assert waiting.stop() == 0, waiting.output


class SkewedClock:
    """This machine's clock, two hours fast."""

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(hours=2)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class NoClock:
    """A clock that must not be read."""

    def now(self) -> datetime:
        raise AssertionError("the election read the local clock")

    def sleep(self, seconds: float) -> None:
        raise AssertionError("the election slept")


@pytest.mark.parametrize("kind", ["postgres"], indirect=True)
def test_a_machine_whose_clock_is_two_hours_off_cannot_take_a_live_lock(
    quiet: Path,
    started: Callable[..., Started],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL only: on SQLite every process runs on the one machine, one clock."""
    holder = started()
    assert until(lambda: holder_pid(quiet) == holder.pid), holder.output
    cfg = _settings(quiet)
    monkeypatch.setattr(db.times, "now", SkewedClock().now)
    skewed = Runtime(cfg, clock=SkewedClock())
    with pytest.raises(LockHeld) as refused:
        skewed.daemon_lock().acquire()
    message = str(refused.value)
    assert f"pid {holder.pid} on {machine.name()}" in message
    # The holder's last heartbeat is seconds old by the database's clock (7,200 s by ours).
    silent = int(message.split("last heartbeat ")[1].split(" s ago")[0])
    assert 0 <= silent < 60, message
    # Neither the runtime's clock nor the process's is read to decide: both refuse to answer.
    monkeypatch.setattr(db.times, "now", NoClock().now)
    blind = Runtime(cfg, engine=skewed.engine, clock=NoClock()).daemon_lock()
    found = blind.try_acquire()
    assert found is not None and found.pid == holder.pid and not blind.held
    assert holder_pid(quiet) == holder.pid
    skewed.close()
    assert holder.stop() == 0, holder.output


@pytest.mark.parametrize("kind", ["postgres"], indirect=True)
def test_a_daemon_whose_database_session_ends_loses_the_election_and_stops(quiet: Path) -> None:
    """The server ends the holder's session (a restart, a cut connection): the lock is free at
    once for another daemon, and the old one's next heartbeat finds out and stops it."""
    from syndicate.scheduling.daemon import Daemon

    cfg = _settings(quiet)
    cut, fresh = Daemon(Runtime(cfg)), Daemon(Runtime(cfg))
    cut.lock.acquire()
    with pytest.raises(LockHeld):
        fresh.lock.acquire()
    with cut.engine.connect() as conn:  # as a restart or a cut connection would
        ended = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                " AND granted AND database = (SELECT oid FROM pg_database"
                " WHERE datname = current_database())"
            )
        ).all()
    assert ended == [(True,)]
    fresh.lock.acquire()
    cut.job_heartbeat()
    assert cut.stop.is_set() and not cut.lock.held
    fresh.job_heartbeat()
    assert not fresh.stop.is_set() and fresh.lock.held
    assert holder_pid(quiet) == os.getpid()
    fresh.lock.release()
    assert holder_pid(quiet) is None


@pytest.mark.parametrize("kind", ["postgres"], indirect=True)
def test_a_silent_holder_is_named_as_hung_and_keeps_the_lock(quiet: Path) -> None:
    """Its heartbeat two hours old by the database's clock (a hung process whose session still
    lives): the refusal says so, and no one takes the lock from it."""
    from syndicate.scheduling.daemon import Daemon

    cfg = _settings(quiet)
    silent, other = Daemon(Runtime(cfg)), Daemon(Runtime(cfg))
    silent.lock.acquire()
    with silent.engine.connect() as conn:
        conn.execute(text("UPDATE daemon_lock SET heartbeat_at = now() - interval '2 hours'"))
        conn.commit()
    with pytest.raises(LockHeld) as refused:
        other.lock.acquire()
    assert re.search(r"no heartbeat for 720\d s: it may be hung, stop it", str(refused.value))
    assert not other.lock.held and holder_pid(quiet) == os.getpid()
    silent.lock.release()
    other.lock.acquire()
    assert other.lock.held
    other.lock.release()
