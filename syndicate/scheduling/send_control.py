"""The author's control over sends: schedule, hold, approve, cancel, reschedule.

Every change is one small transaction on the sends table; a send already going out notices a
hold or cancel between batches (dispatch checks its state), and what was delivered stays
delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from syndicate import db
from syndicate.db import Connection, Engine
from syndicate.db.sends import Send
from syndicate.delivery.message import OutboundMessage
from syndicate.errors import SyndicateError
from syndicate.models import (
    Channel,
    DeliveryResult,
    DeliveryState,
    Edition,
    Post,
    Recipient,
    SendState,
)
from syndicate.scheduling import embargo as embargo_rule
from syndicate.scheduling.timeparse import describe

if TYPE_CHECKING:
    from syndicate.runtime import Runtime

log = logging.getLogger(__name__)

FINISHED = (SendState.DONE.value, SendState.CANCELLED.value)
UTC_ZONE = ZoneInfo("UTC")


def _load(conn: Connection, send_id: int) -> Send:
    send = db.sends.get_send(conn, send_id)
    if send is None:
        raise SyndicateError(f"there is no send {send_id}; 'syndicate sends list' shows them all")
    return send


def _refuse_finished(send: Send, action: str) -> None:
    if send.state == SendState.DONE.value:
        raise SyndicateError(f"send {send.id} was already delivered; cannot {action} it")
    if send.state == SendState.CANCELLED.value:
        raise SyndicateError(f"send {send.id} was cancelled; cannot {action} it")


def _check_order(
    channel: Channel, at: datetime, embargo: datetime | None, zone: ZoneInfo, send_ref: str
) -> None:
    """An embargo is a release time: the send it belongs to must not come after it."""
    if embargo is None or embargo >= at:
        return
    who = "editors would get the column" if channel is Channel.COLUMN else "readers would get it"
    raise SyndicateError(
        f"{send_ref}: the embargo ({describe(embargo, zone)}) is earlier than the send "
        f"({describe(at, zone)}), so {who} after its release time; give an --embargo at or "
        "after --at, or an earlier --at"
    )


def _refuse_embargo_after_readers(
    conn: Connection, post_id: int, embargo: datetime, zone: ZoneInfo
) -> None:
    """An embargo set after readers started getting the post would already be broken."""
    readers = db.sends.find_send(conn, post_id, Channel.NEWSLETTER)
    started = db.as_utc(readers.started_at) if readers else None
    if readers and started and started < embargo:
        raise SyndicateError(
            f"readers started getting this post on {describe(started, zone)} (send "
            f"{readers.id}, {readers.state}); an embargo after that would be broken "
            "already: schedule the column without --embargo"
        )


def take_out_of_digest(conn: Connection, post_id: int) -> None:
    """The author sends this post to readers by itself: it leaves the digest queue, or a
    cancelled digest that reached no reader; a digest that carries it (or reached readers
    before it was cancelled) keeps it, since a post goes to each reader once."""
    digest = db.sends.digest_send_of(conn, post_id)
    if digest is None:
        db.sends.unqueue_digest(conn, post_id)
        return
    if db.sends.send_state(conn, digest) is not SendState.CANCELLED:
        raise SyndicateError(
            f"this post is part of digest send {digest}: readers get it there, and a post goes "
            f"out once per channel (to send it alone, 'syndicate cancel {digest}' first)"
        )
    counts = db.deliveries.delivery_counts(conn, digest)
    reached = counts.get(DeliveryState.SENT, 0) + counts.get(DeliveryState.SENDING, 0)
    if reached:
        raise SyndicateError(
            f"this post was in digest send {digest}, cancelled after it reached {reached} "
            "reader(s): sent alone, they would get it twice"
        )
    db.sends.leave_digest(conn, post_id, digest)


def schedule(
    engine: Engine,
    post_id: int,
    channel: Channel,
    at: datetime,
    embargo: datetime | None = None,
    *,
    zone: ZoneInfo = UTC_ZONE,
) -> tuple[Send, bool]:
    """Schedule (post, channel) at `at`, creating the send if needed; returns (send, created).

    A send that has started or finished cannot be rescheduled: a post goes out once per channel.
    An embargo earlier than the send is refused (kept: the send's existing embargo).
    """
    with engine.begin() as conn:
        existing = db.sends.find_send(conn, post_id, channel)
        ref = f"send {existing.id} ({channel.value})" if existing else f"{channel.value} send"
        kept = db.as_utc(existing.embargo_until) if existing and embargo is None else None
        _check_order(channel, at, embargo or kept, zone, ref)
        if embargo is not None and channel is Channel.COLUMN:
            _refuse_embargo_after_readers(conn, post_id, embargo, zone)
        if channel is Channel.NEWSLETTER:
            take_out_of_digest(conn, post_id)
        if existing is None:
            send_id = db.sends.create_send(conn, post_id, channel, at, embargo, policy="by hand")
            assert send_id is not None
            return _load(conn, send_id), True
        if existing.state not in (
            SendState.SCHEDULED.value,
            SendState.HELD.value,
            SendState.AWAITING_APPROVAL.value,
        ):
            raise SyndicateError(
                f"send {existing.id} ({channel.value}) is {existing.state}; a post goes "
                "out once per channel, so it cannot be scheduled again"
            )
        values: dict[str, Any] = {"scheduled_at": at}
        if embargo is not None:
            values["embargo_until"] = embargo
        db.sends.update_send(conn, existing.id, **values)
        return _load(conn, existing.id), False


def hold(engine: Engine, send_id: int) -> tuple[Send, bool]:
    """Stop a send from going out (a send in progress stops after the current batch).

    Returns (send, changed); holding a held send changes nothing.
    """
    with engine.begin() as conn:
        send = _load(conn, send_id)
        _refuse_finished(send, "hold")
        if send.state == SendState.HELD.value:
            return send, False
        db.sends.set_send_state(conn, send_id, SendState.HELD)
        return _load(conn, send_id), True


def approve(engine: Engine, send_id: int, by: str, at: datetime | None = None) -> tuple[Send, bool]:
    """Release a held or awaiting send; it goes out at its scheduled time (at once if past).

    Returns (send, changed); approving an already scheduled send changes nothing.
    """
    with engine.begin() as conn:
        send = _load(conn, send_id)
        _refuse_finished(send, "approve")
        if send.state not in (SendState.HELD.value, SendState.AWAITING_APPROVAL.value):
            return send, False
        # A held send that had started resumes as 'scheduled': dispatch picks up the rest.
        db.sends.update_send(
            conn,
            send_id,
            state=SendState.SCHEDULED.value,
            approved_at=at or db.now(),
            approved_by=by,
        )
        return _load(conn, send_id), True


def refuse_past_embargo(engine: Engine, send_id: int, at: datetime, zone: ZoneInfo) -> None:
    """A column released by hand after its embargo would print a release time already gone."""
    with engine.connect() as conn:
        send = _load(conn, send_id)
    until = db.as_utc(send.embargo_until)
    waiting = send.state in (SendState.HELD.value, SendState.AWAITING_APPROVAL.value)
    if send.channel != Channel.COLUMN.value or not waiting or until is None or until > at:
        return
    raise SyndicateError(
        f"send {send_id} (column): its embargo ({describe(until, zone)}) has passed, so the "
        f"draft would print a release time already gone; give it a new one with 'syndicate "
        f"reschedule {send_id} --at now --embargo …', then approve it"
    )


def cancel(engine: Engine, send_id: int) -> tuple[Send, bool]:
    """Cancel for good; messages already delivered stay delivered.

    Returns (send, changed); cancelling a cancelled send changes nothing.
    """
    with engine.begin() as conn:
        send = _load(conn, send_id)
        if send.state == SendState.DONE.value:
            raise SyndicateError(f"send {send_id} was already delivered; nothing to cancel")
        if send.state == SendState.CANCELLED.value:
            return send, False
        db.sends.set_send_state(conn, send_id, SendState.CANCELLED)
        return _load(conn, send_id), True


def reschedule(
    engine: Engine,
    send_id: int,
    at: datetime,
    embargo: datetime | None = None,
    *,
    zone: ZoneInfo = UTC_ZONE,
) -> Send:
    """Move a send that has not started (and, with `embargo`, its embargo)."""
    with engine.begin() as conn:
        send = _load(conn, send_id)
        _refuse_finished(send, "reschedule")
        if send.state == SendState.SENDING.value:
            raise SyndicateError(
                f"send {send_id} is going out now; 'syndicate hold {send_id}' first, then "
                "reschedule it"
            )
        channel = Channel(send.channel)
        until = embargo or db.as_utc(send.embargo_until)
        _check_order(channel, at, until, zone, f"send {send_id} ({channel.value})")
        values: dict[str, Any] = {"scheduled_at": at}
        if embargo is not None:
            if channel is Channel.COLUMN:
                _refuse_embargo_after_readers(conn, send.post_id, embargo, zone)
            values["embargo_until"] = embargo
        db.sends.update_send(conn, send_id, **values)
        return _load(conn, send_id)


def waiting(
    conn: Connection, sends: Sequence[Send], at: datetime, *, respect_column: bool
) -> dict[int, embargo_rule.Release]:
    """The embargo each scheduled send will wait for beyond its own time, by send id."""
    held = embargo_rule.releases(conn, sends, respect_column=respect_column)
    found = {}
    for send in sends:
        release = held.get(send.id)
        scheduled = db.as_utc(send.scheduled_at)
        if (
            send.state == SendState.SCHEDULED.value
            and release is not None
            and release.holds(at)
            and (scheduled is None or release.until > scheduled)
        ):
            found[send.id] = release
    return found


def guard_embargo(
    engine: Engine,
    post_id: int,
    at: datetime,
    *,
    respect_column: bool,
    break_embargo: bool,
    zone: ZoneInfo = UTC_ZONE,
) -> embargo_rule.Release | None:
    """`syndicate send` of a reader edition: refuse while an embargo holds it back, unless the
    author breaks it on purpose; that is logged and recorded on the send (embargo_broken_at).

    Returns the embargo that was broken, or None when none held the edition back.
    """
    with engine.begin() as conn:
        readers = db.sends.find_send(conn, post_id, Channel.NEWSLETTER)
        if readers is not None and (
            readers.state in FINISHED or readers.embargo_broken_at is not None
        ):
            return None  # nothing left to send, or the author already broke it on purpose
        if readers is None:
            release = embargo_rule.post_releases(conn, [post_id], respect_column=respect_column)
            found = release.get(post_id)
        else:
            found = embargo_rule.releases(conn, [readers], respect_column=respect_column).get(
                readers.id
            )
        if found is None or not found.holds(at):
            return None
        post = db.posts.get_post(conn, post_id)
        title = post.title if post is not None else f"post {post_id}"
        if not break_embargo:
            raise SyndicateError(
                f"readers must not get {title!r} yet: {found.explain(zone)}; 'syndicate run' "
                "sends it then, or add --break-embargo to send it now"
            )
        if readers is None:
            take_out_of_digest(conn, post_id)
        send_id = (
            readers.id
            if readers
            else db.sends.create_send(conn, post_id, Channel.NEWSLETTER, at, policy="by hand")
        )
        if send_id is None:  # find_send saw none in this very transaction: cannot happen
            raise SyndicateError(f"the newsletter send of post {post_id} vanished; try again")
        db.sends.update_send(conn, send_id, embargo_broken_at=at)
    log.warning(
        "breaking %s: send %s (newsletter) %r goes to readers now (--break-embargo)",
        found.explain(zone),
        send_id,
        title,
    )
    return found


def send_test_copy(runtime: Runtime, post: Post, channel: Channel, address: str) -> DeliveryResult:
    """One copy of the post to `address` (`syndicate send --test`, the desk's "send a test to
    me"): subject marked [TEST], a Message-ID of its own, nothing recorded."""
    import dataclasses

    from syndicate.delivery import dispatch, notices
    from syndicate.delivery.compose import Composer
    from syndicate.render import EditionCache

    if "@" not in address or any(c.isspace() for c in address):
        raise SyndicateError(f"--test needs an email address like you@example.com, got {address!r}")
    settings = runtime.settings

    class TestEditions(EditionCache):
        """The edition with its subject marked [TEST]."""

        def for_recipient(self, recipient: Recipient | None = None) -> Edition:
            edition = super().for_recipient(recipient)
            return dataclasses.replace(edition, subject=f"[TEST] {edition.subject}")

    editions = TestEditions(post, channel, settings, runtime.templates)
    composer = Composer(editions, dispatch.make_sender(settings, runtime.key), 0, runtime.now())
    sample = Recipient(id=0, kind=channel.audience, email=address, name="")
    message = _own_identity(composer.message(0, sample), settings.mail_domain)
    result = notices.send(runtime.transport(), message)
    if result.state is not DeliveryState.SENT:
        raise SyndicateError(f"test copy to {address} was not sent: {result.detail}")
    return result


def _own_identity(message: OutboundMessage, domain: str) -> OutboundMessage:
    """A test copy is a new message each time: its own Message-ID (a mail client would thread
    or drop copies that share one) and its own outbox file name."""
    import dataclasses
    import secrets

    token = secrets.token_hex(8)
    mid = f"<syndicate.test.{token}@{domain}>"
    return dataclasses.replace(message, message_id=mid, label=f"test-{token}-")
