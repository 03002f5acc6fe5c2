"""Step forward: once the record is committed, what the deciding step asked to follow it.

A comment or an editor's answer goes to the author (inbound/notices.py writes it: Reply-To the
reader, threaded under their message); an approval is acted on (step approve); a confirmation
or a refusal notice goes to the writer at their address on record. None of these raises: a
forward that fails leaves the reply `forward_pending`, retried by `pipeline.retry_forwards`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from syndicate import db
from syndicate.db.replies import Reply
from syndicate.inbound import notices
from syndicate.inbound.context import MessageContext
from syndicate.models import DeliveryState, ReplyState

if TYPE_CHECKING:
    from syndicate.runtime import Runtime

log = logging.getLogger(__name__)


def process(message: MessageContext) -> None:
    for action in message.afterwards:
        action(message)


def to_author(message: MessageContext) -> None:
    with message.database.connect() as conn:
        row = db.replies.get_reply(conn, message.reply_id)
    assert row is not None
    message.state = forward_reply(message.runtime, row, message.at)


def forward_reply(runtime: Runtime, row: Reply, at: datetime) -> ReplyState:
    """Forward one filed reply to the author and record the result."""
    engine, settings = runtime.engine, runtime.settings
    with engine.connect() as conn:
        post = db.posts.get_post(conn, row.post_id) if row.post_id else None
        recipient = (
            db.recipients.get_recipient(conn, row.recipient_id) if row.recipient_id else None
        )
    assert post is not None
    try:
        message = notices.forward_message(runtime, row, post, recipient, at)
        result = notices.deliver(runtime, message)
        ok, detail = result.state is DeliveryState.SENT, result.detail
    except Exception as exc:  # a template error or an unreachable server: keep it pending
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    state = ReplyState.FORWARDED if ok else ReplyState.FORWARD_PENDING
    with engine.begin() as conn:
        db.replies.update_reply(
            conn,
            row.id,
            state=state.value,
            forwarded_at=at if ok else None,
            detail=("forwarded to " + settings.author.email) if ok else f"forward failed: {detail}",
        )
    if not ok:
        log.warning("could not forward reply %s to the author: %s (will retry)", row.id, detail)
    return state
