"""The daemon: one per database (a lock with a heartbeat), a clock that can be moved by hand,
restarts that send what became due exactly once, and a clean stop on SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from syndicate import db
from syndicate.delivery.transports import OutboxTransport
from syndicate.models import DeliveryState, SendState
from syndicate.runtime import Runtime
from syndicate.scheduling import election, jobs
from syndicate.scheduling.daemon import Daemon
from syndicate.scheduling.election import LockHeld
from tests.support.scheduling import Blog, Clock, configure, outbox, readers, utc
from tests.support.scheduling import sends as all_sends
from tests.support.waiting import became_true


@pytest.fixture
def scheduled(project: Path):
    """A newsletter send due Tuesday 1 December 2026 07:00 Toronto (12:00 UTC); no column."""
    blog = Blog(project)
    blog.publish("Old")
    cfg = configure(
        project,
        feed__first_run="none",
        newsletter__policy="cron: 0 7 * * tue",
        column__enabled=False,
    )
    engine = db.connect(cfg.database_url)
    jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 23, 12))
    blog.publish("Tuesday essay")
    jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 25, 12))
    [send] = all_sends(engine)
    assert db.as_utc(send.scheduled_at) == utc(2026, 12, 1, 12)
    return cfg, engine


def two_daemons(cfg, engine) -> tuple[Daemon, Daemon]:
    """Two daemons on one database, both at 11:00 on the scheduled day."""
    clock = Clock(utc(2026, 12, 1, 11))
    return (
        Daemon(Runtime(cfg, engine=engine, clock=clock)),
        Daemon(Runtime(cfg, engine=engine, clock=clock)),
    )


def test_a_second_daemon_on_the_same_database_refuses_with_a_clear_message(scheduled) -> None:
    cfg, engine = scheduled
    first, second = two_daemons(cfg, engine)
    first.lock.acquire()
    with pytest.raises(LockHeld) as refused:
        second.lock.acquire()
    message = str(refused.value)
    assert f"pid {os.getpid()}" in message and "--wait" in message
    assert second.lock.freed in message
    if engine.dialect.name == "sqlite":
        assert "3 missed heartbeats (90 s)" in message
    assert second.job_tick() is None  # without the lock its jobs do nothing


def test_two_daemons_on_one_database_send_once(scheduled, project: Path) -> None:
    cfg, engine = scheduled
    clock = Clock(utc(2026, 12, 1, 12, 0, 5))
    first, second = (
        Daemon(Runtime(cfg, engine=engine, clock=clock)),
        Daemon(Runtime(cfg, engine=engine, clock=clock)),
    )
    first.lock.acquire()
    assert second.lock.try_acquire() is not None
    for the_daemon in (first, second, first, second):
        the_daemon.job_tick()
        clock.advance(minutes=1)
    assert len(outbox(project)) == readers(project)


def test_a_crashed_daemons_lock_goes_stale_and_the_old_one_stops_if_it_wakes(scheduled) -> None:
    cfg, engine = scheduled
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's lock row; PostgreSQL frees the lock with the session instead")
    clock = Clock(utc(2026, 12, 1, 11))
    crashed, fresh = (
        Daemon(Runtime(cfg, engine=engine, clock=clock)),
        Daemon(Runtime(cfg, engine=engine, clock=clock)),
    )
    crashed.lock.acquire()
    clock.advance(seconds=60)  # two missed heartbeats: still considered alive
    with pytest.raises(LockHeld):
        fresh.lock.acquire()
    clock.advance(seconds=31)  # three missed
    fresh.lock.acquire()
    crashed.job_heartbeat()
    assert crashed.stop.is_set() and not crashed.lock.held
    fresh.job_heartbeat()
    assert not fresh.stop.is_set()


def test_waiting_daemon_takes_over_when_the_first_stops(scheduled) -> None:
    cfg, engine = scheduled
    first, second = two_daemons(cfg, engine)
    first.lock.acquire()
    naps = []

    def nap(seconds: float) -> bool:
        naps.append(seconds)
        first.lock.release()
        return False

    second.lock.acquire(wait=True, sleep=nap)
    assert naps == [30] and second.lock.held


def test_daemon_stopped_before_the_due_time_and_started_after_it_sends_once(
    scheduled, project: Path
) -> None:
    cfg, engine = scheduled
    clock = Clock(utc(2026, 12, 1, 11, 58))
    before = Daemon(Runtime(cfg, engine=engine, clock=clock))
    before.lock.acquire()
    before.job_tick()
    before.lock.release()  # stopped at 06:58 Toronto
    assert outbox(project) == []

    clock.advance(hours=5)  # the machine was off at 07:00
    after = Daemon(Runtime(cfg, engine=engine, clock=clock))
    after.lock.acquire()
    for _ in range(3):
        after.job_tick()
        clock.advance(minutes=1)
    assert len(outbox(project)) == readers(project)
    assert [s.state for s in all_sends(engine)] == [SendState.DONE.value]


class StopAfterFirstBatch(OutboxTransport):
    """The real outbox transport; after its first batch the daemon receives 'SIGTERM'."""

    def __init__(self, folder: Path, daemon_box: list[Daemon]) -> None:
        super().__init__(folder)
        self.daemon_box = daemon_box

    def send_messages(self, messages, on_result=None):
        results = super().send_messages(messages, on_result)
        self.daemon_box[0].stop.set()
        return results


def test_stop_request_finishes_the_batch_in_flight_and_the_rest_resumes_later(
    scheduled, project: Path
) -> None:
    cfg, engine = scheduled
    cfg = configure(project, **{"transport.smtp__batch_size": 1})
    clock = Clock(utc(2026, 12, 1, 12, 1))
    box: list[Daemon] = []
    the_daemon = Daemon(
        Runtime(
            cfg,
            engine=engine,
            clock=clock,
            transport_factory=lambda s: StopAfterFirstBatch(s.path("outbox"), box),
        )
    )
    box.append(the_daemon)
    the_daemon.lock.acquire()
    the_daemon.job_tick()
    assert len(outbox(project)) == 1
    [send] = all_sends(engine)
    assert (
        send.state == SendState.SENDING.value
        and send.count(DeliveryState.PENDING) == readers(project) - 1
    )
    the_daemon.lock.release()

    restarted = Daemon(Runtime(cfg, engine=engine, clock=clock))
    restarted.lock.acquire()
    restarted.job_tick()
    messages = outbox(project)
    assert len(messages) == readers(project)
    assert len({str(m["To"]) for m in messages}) == readers(project)


def test_scheduler_uses_the_authors_zone_coalesces_and_forgives_misfires(scheduled, caplog) -> None:
    cfg, engine = scheduled
    caplog.set_level(logging.INFO, "syndicate.scheduling.daemon")
    apscheduler = Daemon(Runtime(cfg, engine=engine)).build_scheduler()
    apscheduler.start(paused=True)  # job defaults are applied when the scheduler starts
    try:
        jobs = {job.id: job for job in apscheduler.get_jobs()}
    finally:
        apscheduler.shutdown(wait=False)
    assert str(apscheduler.timezone) == "America/Toronto"
    assert set(jobs) == {"heartbeat", "poll_feed", "due_sends", "retry_forwards"}
    for job in jobs.values():
        assert job.coalesce is True and job.misfire_grace_time == 3600
        assert job.max_instances == 1 and job.func.__module__ == "syndicate.scheduling.daemon"
    assert isinstance(jobs["poll_feed"].trigger, IntervalTrigger)
    assert jobs["poll_feed"].trigger.interval == timedelta(minutes=15)
    assert jobs["due_sends"].trigger.interval == timedelta(minutes=1)
    assert "inbox polling is off" in caplog.text


def _run(project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(project / "settings.toml"), *args],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_real_daemon_sends_refuses_a_second_and_stops_cleanly_on_sigterm(project: Path) -> None:
    cfg = configure(project)
    the_daemon = _run(project, "run")
    try:
        # First run: the newest post of the shipped feed goes to 4 readers and 2 editors.
        assert became_true(lambda: len(outbox(project)) == 6), the_daemon.stderr
        second = subprocess.run(
            [sys.executable, "-m", "syndicate", "--config", str(project / "settings.toml"), "run"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert "another syndicate daemon" in second.stderr and "--wait" in second.stderr
        once = subprocess.run(
            [
                sys.executable,
                "-m",
                "syndicate",
                "-c",
                str(project / "settings.toml"),
                "run",
                "--once",
            ],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert once.returncode == 1 and "another syndicate daemon" in once.stderr
        the_daemon.send_signal(signal.SIGTERM)
        _, stderr = the_daemon.communicate(timeout=30)
    finally:
        if the_daemon.poll() is None:
            the_daemon.kill()
    assert the_daemon.returncode == 0, stderr
    assert "SIGTERM" in stderr and "syndicate daemon stopped" in stderr
    engine = db.connect(cfg.database_url)
    with engine.connect() as conn:
        assert db.locks.lock_holder(conn) is None
    assert len(outbox(project)) == 6


def test_daemons_starting_at_the_same_moment_get_one_lock(scheduled) -> None:
    cfg, _ = scheduled
    daemons = [Daemon(Runtime(cfg)) for _ in range(4)]
    barrier = threading.Barrier(len(daemons))
    outcomes: list[str] = []

    def start(the_daemon: Daemon) -> None:
        barrier.wait()
        try:
            the_daemon.lock.acquire()
            outcomes.append("held")
        except LockHeld:
            outcomes.append("refused")

    threads = [threading.Thread(target=start, args=(d,)) for d in daemons]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["held", "refused", "refused", "refused"]


def test_a_one_off_run_keeps_its_lock_alive_for_as_long_as_it_runs(scheduled) -> None:
    """`run --once` and `send` renew the lock while they work, so a send longer than the stale
    time is never taken for a crashed one by the next run (which would send it again)."""
    _, engine = scheduled
    lock = election.lock_for(engine, heartbeat_seconds=0.05, stale_after_missed=2)
    with lock.held_while():
        with engine.connect() as conn:
            first = _holder(conn).heartbeat_at
        time.sleep(0.3)  # six heartbeats: the stale limit is two missed ones
        with engine.connect() as conn:
            later = _holder(conn).heartbeat_at
        assert later > first
        rival = election.lock_for(engine, heartbeat_seconds=0.05, stale_after_missed=2)
        with pytest.raises(LockHeld):
            rival.acquire()
    with engine.connect() as conn:
        assert db.locks.lock_holder(conn) is None


def _holder(conn: db.Connection) -> db.locks.LockHolder:
    holder = db.locks.lock_holder(conn)
    assert holder is not None
    return holder
