"""Run a send: plan one delivery per recipient, then claim, compose, transmit and record in batches.

State is committed before and after every transport call, so a crash at any moment leaves each
delivery pending, sending (claimed), deferred (with the time of its next attempt) or finished.
Each message the server accepts is also written to the journal (delivery/journal.py) the moment
it answers; the next run marks those sent before it requeues the other claimed rows, so after a
kill -9 only a message whose answer had not arrived yet (at most one per connection) can go
twice. While the transport sends one batch, the one before it is recorded and the next is
claimed and composed. Recipients are read from the database one batch at a time: memory stays
flat whatever the size of the list.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from syndicate import db
from syndicate.db import Engine
from syndicate.delivery import throttle, workers
from syndicate.delivery.compose import Composer, Sender
from syndicate.delivery.journal import Journal
from syndicate.delivery.message import OutboundMessage
from syndicate.delivery.transports.base import Transport
from syndicate.errors import TransportError
from syndicate.models import (
    Channel,
    DeliveryResult,
    DeliveryState,
    RecipientStatus,
    SendState,
    SendSummary,
)
from syndicate.render import EditionCache
from syndicate.settings import Retry, Settings

if TYPE_CHECKING:
    from syndicate.runtime import Clock, Runtime

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off for temporary failures: first, 2×first, 4×first … up to `longest`."""

    first: float = 60.0
    longest: float = 3600.0
    max_attempts: int = 10

    @classmethod
    def from_settings(cls, retry: Retry) -> Backoff:
        return cls(retry.first_delay_seconds, retry.max_delay_seconds, retry.max_attempts)

    def delay(self, attempts: int) -> float:
        return min(self.first * 2 ** max(attempts - 1, 0), self.longest)


def make_sender(settings: Settings, key: bytes, installation: str = "") -> Sender:
    list_id = settings.mail.list_id or f"newsletter.{settings.mail_domain}"
    return Sender(
        name=settings.author.name,
        from_address=settings.mail.from_address,
        reply_address=settings.mail.reply_address,
        base_url=settings.mail.base_url,
        list_name=settings.site.name,
        list_id=list_id,
        key=key,
        bounce_address=settings.mail.bounce_address,
        installation=installation,
    )


def run_send(
    runtime: Runtime,
    send_id: int,
    transport: Transport,
    *,
    batch_size: int | None = None,
    progress: Progress | None = None,
    backoff: Backoff | None = None,
    wait_for_retries: float = 0.0,
    should_stop: Callable[[], bool] | None = None,
    journal: Journal | None = None,
) -> SendSummary:
    """Deliver one send to everyone still pending; safe to call again after any interruption.

    The database, key, templates, clock and settings come from `runtime`; `batch_size` and
    `backoff` default to the settings' (`[transport]`). `should_stop` (SIGINT or SIGTERM) is
    asked after each recorded batch: the batch in flight is finished and recorded, the one
    prepared next is handed back, the rest stays queued. `journal` defaults to the one next to
    the database (journal.path_for).

    Deferred deliveries are retried when their back-off time comes: within this call if that is
    at most `wait_for_retries` seconds away, otherwise by a later call.
    """
    engine, settings, clock = runtime.engine, runtime.settings, runtime.clock
    batch_size = batch_size or settings.transport.batch_size
    backoff = backoff or Backoff.from_settings(settings.transport.retry)
    journal = journal if journal is not None else Journal.for_engine(engine)
    started = time.monotonic()
    recovered = recover(engine, journal)
    with engine.begin() as conn:
        # A worker joining the send waits for this plan to be committed, then finds every
        # delivery planned, instead of planning the whole list again against a snapshot from
        # before the commit (bench/workers.py: it joined seconds late).
        db.sends.lock_planning(conn, send_id)
        send = db.sends.get_send(conn, send_id)
        if send is None:
            raise ValueError(f"no send {send_id}")
        post = db.posts.get_post(conn, send.post_id)
        assert post is not None
        channel = Channel(send.channel)
        if send.state in (SendState.DONE.value, SendState.CANCELLED.value):
            return SendSummary(send_id, channel, post.title)
        resumed, deferred_before = db.deliveries.requeue(conn, send_id, workers.gone)
        planned = db.deliveries.plan_deliveries(conn, send_id, channel.audience)
        if not db.sends.start_sending(conn, send_id, send.state):
            log.warning("send %s was held, cancelled or finished while it was planned", send_id)
    if recovered:
        log.warning(
            "%d message(s) accepted by the server before the last run stopped are now recorded "
            "as sent (from %s)",
            recovered,
            journal.path,
        )
    if resumed:
        log.warning(
            "send %s: resuming; %d message(s) were in flight when it stopped", send_id, resumed
        )
    if deferred_before:
        log.info("send %s: %d deferred message(s) wait for a retry", send_id, deferred_before)
    log.info("send %s (%s, %r): %d new deliveries planned", send_id, channel, post.title, planned)

    editions = EditionCache(
        post, channel, settings, runtime.templates, db.as_utc(send.embargo_until)
    )
    # Message-IDs unique to this database
    sender = make_sender(settings, runtime.key, installation=db.meta.installation_id(engine))
    composer = Composer(editions, sender, send_id, clock.now())
    counts = {state: 0 for state in DeliveryState}
    throttle.share_limits(transport, engine, should_stop=should_stop)
    try:
        transport.open()
    except TransportError as exc:
        log.error("send %s: %s; every delivery stays queued for the next run", send_id, exc)
        return SendSummary(send_id, channel, post.title, error=str(exc))
    journal.open()
    courier = _Courier(engine, send_id, transport, backoff, clock, counts, progress, journal)
    courier.claimer = workers.claimer_name()
    try:
        _deliver(
            engine, send_id, batch_size, composer, courier, clock, wait_for_retries, should_stop
        )
    finally:
        try:
            courier.shutdown()
        finally:
            transport.close()
            journal.close()
    remaining = finish_if_done(engine, send_id)
    summary = SendSummary(
        send_id=send_id,
        channel=channel,
        post_title=post.title,
        sent=counts[DeliveryState.SENT],
        deferred=remaining.get(DeliveryState.DEFERRED, 0),
        failed=counts[DeliveryState.FAILED],
        skipped=remaining.get(DeliveryState.SKIPPED, 0),
        seconds=time.monotonic() - started,
    )
    log.info(
        "send %s done: %d sent, %d deferred, %d failed, %d skipped in %.1f s",
        send_id,
        summary.sent,
        summary.deferred,
        summary.failed,
        summary.skipped,
        summary.seconds,
    )
    return summary


def finish_if_done(engine: Engine, send_id: int) -> dict[DeliveryState, int]:
    """Mark the send done when no delivery is left pending, deferred or in flight; returns its
    deliveries counted by state."""
    with engine.begin() as conn:
        # Not while another run plans: its new deliveries would be counted only once committed.
        db.sends.lock_planning(conn, send_id)
        remaining = db.deliveries.delivery_counts(conn, send_id)
        finished = not any(remaining.get(s) for s in workers.UNFINISHED)
        if finished and db.sends.send_state(conn, send_id) == SendState.SENDING.value:
            db.sends.set_send_state(conn, send_id, SendState.DONE)
    return remaining


def recover(engine: Engine, journal: Journal) -> int:
    """Mark sent every claimed row the journal (and, on a server database, the journal of a
    dead worker of this machine) says the server accepted (a run killed before it could record
    them), then empty the journal; returns how many rows changed."""
    return journal.apply_orphans(engine) + journal.apply(engine)


@dataclass
class _Batch:
    outbound: list[OutboundMessage]
    results: Future[list[DeliveryResult]] | None = None


class _Courier:
    """Sends one batch at a time in a background thread while the next is claimed and composed,
    and records each sent batch in another thread while the next one is sent: the connections
    never wait for the database. At most three batches are claimed and unrecorded at once (one
    recorded, one sent, one composed); the journal keeps the accepted lines of the two in
    flight until each is committed."""

    def __init__(
        self,
        engine: Engine,
        send_id: int,
        transport: Transport,
        backoff: Backoff,
        clock: Clock,
        counts: dict[DeliveryState, int],
        progress: Progress | None,
        journal: Journal,
    ) -> None:
        self.engine, self.send_id, self.transport = engine, send_id, transport
        self.backoff, self.clock, self.counts, self.progress = backoff, clock, counts, progress
        self.journal = journal
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="syndicate-send")
        # An in-memory database is one per thread: there, batches are recorded in this one.
        self.recorder = (
            ThreadPoolExecutor(1, thread_name_prefix="syndicate-record")
            if db.engine.companion_path(engine.url, "") is not None
            else None
        )
        self.in_flight: _Batch | None = None
        self.recording: Future[None] | None = None
        self.claimer = ""

    def dispatch(self, batch: _Batch) -> None:
        if batch.outbound:
            batch.results = self.pool.submit(self._transmit, batch.outbound)
        self.in_flight = batch

    def _transmit(self, outbound: list[OutboundMessage]) -> list[DeliveryResult]:
        message_ids = {m.delivery_id: m.message_id for m in outbound}
        note = self.journal.note

        def on_result(result: DeliveryResult) -> None:
            if result.state is DeliveryState.SENT:
                note(result.delivery_id, message_ids.get(result.delivery_id, ""), result.detail)

        return self.transport.send_messages(outbound, on_result)

    def finish(self) -> str:
        """Wait until the batch in flight is sent and start recording it (once the batch before
        it is recorded); returns why the send must pause (the transport is unavailable) or ''."""
        if self.in_flight is None:
            return ""
        # A recording that failed (the database is gone) stops the send before another batch
        # is sent; the one in flight stays for shutdown() to finish and record.
        self.settle()
        batch, self.in_flight = self.in_flight, None
        results = batch.results.result() if batch.results is not None else []
        if self.recorder is None:
            self._record(batch.outbound, results)
        else:
            self.recording = self.recorder.submit(self._record, batch.outbound, results)
        for result in results:
            self.counts[result.state] += 1
        if self.progress:
            self.progress(sum(1 for r in results if r.state is not DeliveryState.DEFERRED))
        if results and all(r.outage for r in results):
            return results[0].detail
        return ""

    def _record(self, outbound: list[OutboundMessage], results: list[DeliveryResult]) -> None:
        _record(self.engine, outbound, results, self.backoff, self.clock.now())
        # Those lines are committed to the database; the next batch's stay.
        self.journal.forget({result.delivery_id for result in results})

    def settle(self) -> None:
        """Wait for the batch being recorded; what its recording raised is raised here."""
        recording, self.recording = self.recording, None
        if recording is not None:
            recording.result()

    def shutdown(self) -> None:
        try:
            self.finish()
        finally:
            try:
                self.settle()
            finally:
                self.pool.shutdown(wait=True)
                if self.recorder is not None:
                    self.recorder.shutdown(wait=True)


def _deliver(
    engine: Engine,
    send_id: int,
    batch_size: int,
    composer: Composer,
    courier: _Courier,
    clock: Clock,
    wait_for_retries: float,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Claim, compose and hand over batches until nothing is left, the send is held or
    cancelled, the transport is unavailable, a stop is requested, or the next retry is too far
    away."""
    while True:
        if should_stop is not None and should_stop() and courier.in_flight is None:
            log.warning("send %s: stop requested; the rest stays queued", send_id)
            return
        with engine.begin() as conn:
            running = db.sends.send_state(conn, send_id) == SendState.SENDING.value
            claimed = (
                db.deliveries.claim_batch(
                    conn, send_id, batch_size, clock.now(), claimer=courier.claimer
                )
                if running
                else []
            )
            retry_at = (
                db.deliveries.next_retry_at(conn, send_id) if running and not claimed else None
            )
        upcoming = _Batch([composer.message(*row) for row in claimed]) if claimed else None
        if courier.in_flight is not None:
            try:
                reason = courier.finish()
            except BaseException:
                if upcoming is not None:  # claimed, never sent: back to the queue if we can
                    with contextlib.suppress(db.DatabaseError):
                        _release(engine, upcoming)
                raise
            if not reason and should_stop is not None and should_stop():
                reason = "a stop was requested"
            if not reason and not _still_sending(engine, send_id):
                reason = "it was held or cancelled"
            if reason:
                if upcoming is not None:
                    _release(engine, upcoming)
                log.warning("send %s: %s; stopping, the rest stays queued", send_id, reason)
                return
            if upcoming is None:
                courier.settle()
                continue  # look again: the batch just recorded may have changed what is due
        if not running:
            log.warning("send %s was stopped (held or cancelled); stopping here", send_id)
            return
        if upcoming is None:
            if retry_at is None:
                if workers.take_back_abandoned(engine, send_id, courier.claimer, courier.journal):
                    continue
                return  # other workers' rows in flight, if any, are theirs to finish
            wait = (retry_at - clock.now()).total_seconds()
            if wait > wait_for_retries:
                log.info(
                    "send %s: next retry at %s; leaving it for a later run",
                    send_id,
                    retry_at.isoformat(timespec="seconds"),
                )
                return
            log.info("send %s: waiting %.0f s for deferred messages", send_id, wait)
            _wait(clock, max(wait, 0.0), should_stop)
            continue
        courier.dispatch(upcoming)


def _wait(clock: Clock, seconds: float, should_stop: Callable[[], bool] | None) -> None:
    """Sleep, in steps short enough that a stop request is heard within half a second."""
    if should_stop is None:
        clock.sleep(seconds)
        return
    while seconds > 0 and not should_stop():
        step = min(seconds, 0.5)
        clock.sleep(step)
        seconds -= step


def _still_sending(engine: Engine, send_id: int) -> bool:
    with engine.connect() as conn:
        return db.sends.send_state(conn, send_id) == SendState.SENDING.value


def _release(engine: Engine, batch: _Batch) -> None:
    """Give back a claimed batch that was never handed to the transport."""
    ids = [m.delivery_id for m in batch.outbound]
    with engine.begin() as conn:
        db.deliveries.release_claimed(conn, ids)


def _record(
    engine: Engine,
    outbound: list[OutboundMessage],
    results: list[DeliveryResult],
    backoff: Backoff,
    at: datetime,
) -> None:
    """Store a batch's outcomes in one transaction; 5xx bounces the address, 4xx backs off."""
    by_id = {message.delivery_id: message for message in outbound}
    rows = []
    with engine.begin() as conn:
        deferred = [r.delivery_id for r in results if r.state is DeliveryState.DEFERRED]
        attempts = db.deliveries.attempts_of(conn, deferred) if deferred else {}
        for result in results:
            message = by_id[result.delivery_id]
            email = message.recipient.email
            state, detail, retry_at = result.state, result.detail, None
            if state is DeliveryState.DEFERRED:
                tried = attempts.get(result.delivery_id, 1)
                if tried >= backoff.max_attempts:
                    state = DeliveryState.FAILED
                    detail = f"gave up after {tried} attempts: {detail}"
                    log.warning("failed %s: %s", email, detail)
                else:
                    retry_at = at + timedelta(seconds=backoff.delay(tried))
                    log.info("deferred %s (attempt %d): %s", email, tried, detail)
            elif state is DeliveryState.FAILED and not result.bounce:
                log.error("failed %s: %s", email, detail)
            elif state is DeliveryState.FAILED:
                reason = f"refused by the mail server: {detail}"
                db.recipients.mark_recipient(
                    conn, message.recipient.id, RecipientStatus.BOUNCED, reason, at
                )
                log.warning("failed %s: %s; address marked bounced", email, detail)
            rows.append((result.delivery_id, state, detail, message.message_id or None, retry_at))
        db.deliveries.record_results(conn, rows)
