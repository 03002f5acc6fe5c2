"""`syndicate run`: the daemon. An APScheduler clock runs the jobs (scheduling/jobs.py) while
this process holds the database's daemon lock (scheduling/election.py), and stops cleanly on
SIGTERM, finishing the batch in flight. Meanwhile it takes inbound mail by LMTP on a Unix socket
(inbound/sources/lmtp.py), in a thread of its own.

APScheduler is only the clock (MemoryJobStore, nothing pickled): the sends live in our table.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from syndicate.db import Engine
from syndicate.inbound.sources import lmtp
from syndicate.scheduling.election import DaemonLock
from syndicate.scheduling.jobs import (
    RunReport,
    StopRequested,
    Waiting,
    describe_wait,
    inbox_poller,
    poll_feed,
    tick,
)
from syndicate.settings import Settings

if TYPE_CHECKING:
    from syndicate.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class Daemon:
    """`syndicate run`: the jobs, the lock and a stop flag. Every job gets the runtime (its
    clock, transports and database), so a test injects time and transports there."""

    runtime: Runtime
    stop: threading.Event = field(default_factory=threading.Event)
    # What the socket answers to `syndicate status` (cli/status.py answerer); None: nothing.
    status: lmtp.StatusAnswer | None = None
    # The settings' digest before they were read (settings_digest.py): the pipe and `status`
    # are answered here only when theirs is the same. None: they answer themselves.
    settings_digest: str | None = None
    lock: DaemonLock = field(init=False)
    scheduler: BackgroundScheduler | None = field(default=None, init=False)
    announced: set[tuple[int, datetime]] = field(default_factory=set, init=False)
    # APScheduler's shutdown(wait=True) holds the lock modify_job needs while it waits for the
    # running job: a feed poll moving a job as the daemon stops would wait for ever.
    rescheduling: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.lock = self.runtime.daemon_lock()
        self.inbox, self.inbox_reason = inbox_poller(self.settings)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    def job_poll_feed(self) -> None:
        if self.stop.is_set() or not self.lock.held:
            return
        report = poll_feed(self.runtime)
        if report.poll and report.poll.sends_created and self.scheduler is not None:
            with self.rescheduling:
                if self.stop.is_set():
                    return
                # Don't make an "immediately" post wait for the next minute.
                now = datetime.now(self.settings.zone)
                self.scheduler.modify_job("due_sends", next_run_time=now)

    def job_tick(self) -> RunReport | None:
        if self.stop.is_set() or not self.lock.held:
            return None
        try:
            report = tick(self.runtime, stop=self.stop)
        except StopRequested:
            log.info("stopping: the batch in flight was recorded; the rest resumes next start")
            return None
        self.announce_waits(report.waiting)
        return report

    def announce_waits(self, waiting: list[Waiting]) -> None:
        """Say once (not every minute) why a due send waits."""
        for wait in waiting:
            key = (wait.send_id, wait.release.until)
            if key not in self.announced:
                self.announced.add(key)
                log.info("%s", describe_wait(wait, self.settings))

    def job_poll_inbox(self) -> None:
        if self.inbox is None or self.stop.is_set() or not self.lock.held:
            return
        self.inbox(self.runtime)

    def job_retry_forwards(self) -> None:
        """Forwards left pending by any entrance (an MTA pipe too) are retried here."""
        if self.stop.is_set() or not self.lock.held:
            return
        from syndicate.inbound.pipeline import retry_forwards

        forwarded, pending = retry_forwards(self.runtime)
        if forwarded or pending:
            log.info("forwards retried: %d sent, %d still pending", forwarded, pending)

    def job_heartbeat(self) -> None:
        if self.stop.is_set():
            return
        if not self.lock.beat():
            log.error(
                "this daemon lost its database lock (another daemon took it over after missed "
                "heartbeats, or its database session ended); stopping so that only one sends"
            )
            self.stop.set()

    def build_scheduler(self) -> BackgroundScheduler:
        """The clock: explicit time zone, coalescing, generous misfire grace, one instance.

        The jobs that write to the database share one worker, so they never race each other
        for SQLite's write lock; the heartbeat has its own so a long send cannot starve it.
        """
        grace = int(self.settings.daemon.misfire_grace_minutes * 60)
        scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(1), "heartbeat": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "misfire_grace_time": grace, "max_instances": 1},
            timezone=self.settings.zone,
        )
        now = datetime.now(self.settings.zone)
        daemon = self.settings.daemon
        # (job, interval, id, name, first run, executor); the inbox job only with an inbox.
        jobs: list[tuple[Callable[[Daemon], object], timedelta, str, str, datetime | None, str]] = [
            (
                job_heartbeat,
                timedelta(seconds=daemon.heartbeat_seconds),
                "heartbeat",
                "lock heartbeat",
                None,
                "heartbeat",
            ),
            (
                job_poll_feed,
                timedelta(minutes=daemon.poll_minutes),
                "poll_feed",
                "poll the feed",
                now,
                "default",
            ),
            (
                job_tick,
                timedelta(minutes=1),
                "due_sends",
                "start due sends",
                now + timedelta(seconds=2),
                "default",
            ),
        ]
        if self.inbox is not None:
            jobs.append(
                (
                    job_poll_inbox,
                    timedelta(minutes=daemon.inbox_minutes),
                    "poll_inbox",
                    "poll the inbox",
                    now,
                    "default",
                )
            )
        else:
            log.info("inbox polling is off: %s", self.inbox_reason)
        jobs.append(
            (
                job_retry_forwards,
                timedelta(minutes=daemon.inbox_minutes),
                "retry_forwards",
                "retry pending forwards",
                now + timedelta(seconds=5),
                "default",
            )
        )
        for job, every, job_id, name, first_run, executor in jobs:
            extra = {} if first_run is None else {"next_run_time": first_run}
            scheduler.add_job(
                job,
                "interval",
                args=[self],
                seconds=every.total_seconds(),
                id=job_id,
                name=name,
                executor=executor,
                **extra,
            )
        return scheduler

    def serve(self, *, wait_for_lock: bool = False) -> None:
        """Run until `stop` is set (SIGTERM/SIGINT), then finish the batch in flight and exit."""
        self.lock.acquire(wait=wait_for_lock, sleep=self.stop.wait)
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            # APScheduler logs every job run at INFO; our jobs tell the story themselves.
            logging.getLogger("apscheduler").setLevel(logging.WARNING)
        scheduler = self.scheduler = self.build_scheduler()
        scheduler.start()
        # The pipe's messages and an MTA's, filed here without a Python start each.
        listener = lmtp.start(self.runtime, self.status, self.settings_digest)
        log.info(
            "syndicate daemon running (time zone %s; feed every %g min, sends every minute)",
            self.settings.author.timezone,
            self.settings.daemon.poll_minutes,
        )
        try:
            self.stop.wait()
        finally:
            log.info("stopping: waiting for the job in progress to finish")
            self.stop.set()
            if listener is not None:
                listener.stop()
            with self.rescheduling:  # a job moving another is done; later ones see `stop`
                pass
            scheduler.shutdown(wait=True)
            if self.lock.held:
                self.lock.release()
            log.info("syndicate daemon stopped")


# Job functions are module-level (APScheduler's advice), taking the daemon as their argument.


def job_poll_feed(daemon: Daemon) -> None:
    daemon.job_poll_feed()


def job_tick(daemon: Daemon) -> None:
    daemon.job_tick()


def job_poll_inbox(daemon: Daemon) -> None:
    daemon.job_poll_inbox()


def job_retry_forwards(daemon: Daemon) -> None:
    daemon.job_retry_forwards()


def job_heartbeat(daemon: Daemon) -> None:
    daemon.job_heartbeat()
