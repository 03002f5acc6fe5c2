"""The author's control over sends: schedule, hold, approve, cancel, reschedule.

Every change is one small transaction on the sends table; a send already going out notices a
hold or cancel between batches (dispatch checks its state), and what was delivered stays
delivered.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from syndicate import store
from syndicate.errors import SyndicateError
from syndicate.models import Channel, SendState

log = logging.getLogger(__name__)

FINISHED = (SendState.DONE.value, SendState.CANCELLED.value)


def _load(conn: Connection, send_id: int) -> dict[str, Any]:
    send = store.get_send(conn, send_id)
    if send is None:
        raise SyndicateError(f"there is no send {send_id}; 'syndicate sends list' shows them all")
    return send


def _refuse_finished(send: dict[str, Any], action: str) -> None:
    if send["state"] == SendState.DONE.value:
        raise SyndicateError(f"send {send['id']} was already delivered; cannot {action} it")
    if send["state"] == SendState.CANCELLED.value:
        raise SyndicateError(f"send {send['id']} was cancelled; cannot {action} it")


def schedule(
    engine: Engine,
    post_id: int,
    channel: Channel,
    at: datetime,
    embargo: datetime | None = None,
) -> tuple[dict[str, Any], bool]:
    """Schedule (post, channel) at `at`, creating the send if needed; returns (send, created).

    A send that has started or finished cannot be rescheduled: a post goes out once per channel.
    """
    if embargo is not None and channel is Channel.NEWSLETTER and embargo > at:
        log.info("the reader edition will wait for its embargo")
    with engine.begin() as conn:
        existing = store.find_send(conn, post_id, channel)
        if channel is Channel.NEWSLETTER:
            digest = store.digest_send_of(conn, post_id)
            if digest is not None:
                raise SyndicateError(
                    f"this post is part of digest send {digest}: readers get it there, and a "
                    "post goes out once per channel (cancel the digest first to send it alone)"
                )
            store.unqueue_digest(conn, post_id)
        if existing is None:
            send_id = store.create_send(conn, post_id, channel, at, embargo, policy="by hand")
            assert send_id is not None
            return _load(conn, send_id), True
        if existing["state"] not in (
            SendState.SCHEDULED.value,
            SendState.HELD.value,
            SendState.AWAITING_APPROVAL.value,
        ):
            raise SyndicateError(
                f"send {existing['id']} ({channel.value}) is {existing['state']}; a post goes "
                "out once per channel, so it cannot be scheduled again"
            )
        values: dict[str, Any] = {"scheduled_at": at}
        if embargo is not None:
            values["embargo_until"] = embargo
        store.update_send(conn, existing["id"], **values)
        return _load(conn, existing["id"]), False


def hold(engine: Engine, send_id: int) -> dict[str, Any]:
    """Stop a send from going out (a send in progress stops after the current batch)."""
    with engine.begin() as conn:
        send = _load(conn, send_id)
        _refuse_finished(send, "hold")
        store.set_send_state(conn, send_id, SendState.HELD)
        return _load(conn, send_id)


def approve(
    engine: Engine, send_id: int, by: str, at: datetime | None = None
) -> tuple[dict[str, Any], bool]:
    """Release a held or awaiting send; it goes out at its scheduled time (at once if past).

    Returns (send, changed); approving an already scheduled send changes nothing.
    """
    with engine.begin() as conn:
        send = _load(conn, send_id)
        _refuse_finished(send, "approve")
        if send["state"] not in (SendState.HELD.value, SendState.AWAITING_APPROVAL.value):
            return send, False
        # A held send that had started resumes as 'scheduled': dispatch picks up the rest.
        store.update_send(
            conn,
            send_id,
            state=SendState.SCHEDULED.value,
            approved_at=at or store.now(),
            approved_by=by,
        )
        return _load(conn, send_id), True


def cancel(engine: Engine, send_id: int) -> dict[str, Any]:
    """Cancel for good; messages already delivered stay delivered."""
    with engine.begin() as conn:
        send = _load(conn, send_id)
        if send["state"] == SendState.DONE.value:
            raise SyndicateError(f"send {send_id} was already delivered; nothing to cancel")
        if send["state"] != SendState.CANCELLED.value:
            store.set_send_state(conn, send_id, SendState.CANCELLED)
        return _load(conn, send_id)


def reschedule(engine: Engine, send_id: int, at: datetime) -> dict[str, Any]:
    with engine.begin() as conn:
        send = _load(conn, send_id)
        _refuse_finished(send, "reschedule")
        if send["state"] == SendState.SENDING.value:
            raise SyndicateError(
                f"send {send_id} is going out now; 'syndicate hold {send_id}' first, then "
                "reschedule it"
            )
        store.update_send(conn, send_id, scheduled_at=at)
        return _load(conn, send_id)
