"""Run a send: plan one delivery per recipient, then claim, compose, transmit and record in batches.

State is committed before and after every transport call, so a crash at any moment leaves each
delivery pending, sending (in flight: may be sent once more on resume) or finished.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from jinja2 import Environment
from sqlalchemy.engine import Engine

from syndicate import store
from syndicate.compose import Sender, compose, message_id
from syndicate.errors import TransportError
from syndicate.models import (
    Channel,
    DeliveryResult,
    DeliveryState,
    OutboundMessage,
    SendState,
    SendSummary,
)
from syndicate.render import EditionCache
from syndicate.settings import Settings
from syndicate.transports.base import Transport

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


def make_sender(settings: Settings, key: bytes) -> Sender:
    list_id = settings.mail.list_id or f"newsletter.{settings.mail_domain}"
    return Sender(
        name=settings.author.name,
        from_address=settings.mail.from_address,
        reply_address=settings.mail.reply_address,
        base_url=settings.mail.base_url,
        list_name=settings.site.name,
        list_id=list_id,
        key=key,
    )


def run_send(
    engine: Engine,
    send_id: int,
    settings: Settings,
    env: Environment,
    transport: Transport,
    sender: Sender,
    *,
    batch_size: int = 100,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> SendSummary:
    """Deliver one send to everyone still pending; safe to call again after any interruption."""
    started = time.monotonic()
    with engine.begin() as conn:
        send = store.get_send(conn, send_id)
        if send is None:
            raise ValueError(f"no send {send_id}")
        post = store.get_post(conn, send["post_id"])
        assert post is not None
        channel = Channel(send["channel"])
        if send["state"] in (SendState.DONE.value, SendState.CANCELLED.value):
            return SendSummary(send_id, channel, post.title)
        resumed, retried = store.requeue(conn, send_id)
        planned = store.plan_deliveries(conn, send_id, channel.audience)
        store.set_send_state(conn, send_id, SendState.SENDING)
    if resumed:
        log.warning(
            "send %s: resuming; %d message(s) were in flight when it stopped", send_id, resumed
        )
    if retried:
        log.info("send %s: retrying %d deferred message(s)", send_id, retried)
    log.info("send %s (%s, %r): %d new deliveries planned", send_id, channel, post.title, planned)

    editions = EditionCache(post, channel, settings, env, store.as_utc(send["embargo_until"]))
    counts = {state: 0 for state in DeliveryState}
    date = now or store.now()
    try:
        transport.open()
    except TransportError as exc:
        log.error("send %s: %s; every delivery stays queued for the next run", send_id, exc)
        return SendSummary(send_id, channel, post.title, error=str(exc))
    try:
        while True:
            with engine.begin() as conn:
                if store.send_state(conn, send_id) != SendState.SENDING.value:
                    log.warning("send %s was stopped (held or cancelled); stopping here", send_id)
                    break
                batch = store.claim_batch(conn, send_id, batch_size)
            if not batch:
                break
            outbound = [
                OutboundMessage(
                    delivery_id,
                    recipient,
                    settings.mail.from_address,
                    compose(editions.for_recipient(recipient), recipient, send_id, sender, date),
                )
                for delivery_id, recipient in batch
            ]
            results = transport.send_batch(outbound)
            _record(engine, send_id, sender, batch, results)
            for result in results:
                counts[result.state] += 1
            if progress:
                progress(len(results))
            if counts[DeliveryState.DEFERRED] and all(
                r.state is DeliveryState.DEFERRED for r in results
            ):
                log.warning(
                    "send %s: every message of a batch was deferred; stopping for now", send_id
                )
                break
    finally:
        transport.close()
    with engine.begin() as conn:
        remaining = store.delivery_counts(conn, send_id)
        finished = not remaining.get(DeliveryState.PENDING.value) and not remaining.get(
            DeliveryState.DEFERRED.value
        )
        if finished and store.send_state(conn, send_id) == SendState.SENDING.value:
            store.set_send_state(conn, send_id, SendState.DONE)
        skipped = remaining.get(DeliveryState.SKIPPED.value, 0)
    summary = SendSummary(
        send_id=send_id,
        channel=channel,
        post_title=post.title,
        sent=counts[DeliveryState.SENT],
        deferred=counts[DeliveryState.DEFERRED],
        failed=counts[DeliveryState.FAILED],
        skipped=skipped,
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


def _record(
    engine: Engine,
    send_id: int,
    sender: Sender,
    batch: list,
    results: list[DeliveryResult],
) -> None:
    recipients = {delivery_id: recipient for delivery_id, recipient in batch}
    with engine.begin() as conn:
        for result in results:
            recipient = recipients[result.delivery_id]
            if result.state is DeliveryState.DEFERRED:
                # Back to the queue: a later run tries again.
                store.record_result(
                    conn, result.delivery_id, DeliveryState.DEFERRED, result.detail, None
                )
                log.warning("deferred %s: %s", recipient.email, result.detail)
                continue
            if result.state is DeliveryState.FAILED:
                store.set_recipient_status(conn, recipient.id, "bounced")
                log.warning("failed %s: %s", recipient.email, result.detail)
            store.record_result(
                conn,
                result.delivery_id,
                result.state,
                result.detail,
                message_id(send_id, recipient.id, sender.domain),
            )
