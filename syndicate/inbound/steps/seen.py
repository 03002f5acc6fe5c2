"""Step seen: a message already recorded (by its Message-ID, else its bytes) ends here with the
outcome it had, so an entrance may hand the same message over again (a retried pipe, a webhook
SendGrid repeats, an IMAP poll that crashed before moving it): nothing is filed or sent twice.
"""

from __future__ import annotations

import hashlib
import logging

from syndicate import db
from syndicate.inbound.context import MessageContext, Outcome
from syndicate.models import InboundMessage, ReplyKind, ReplyState

log = logging.getLogger(__name__)


def seen_keys(inbound: InboundMessage) -> list[str]:
    """Keys that recognise the same message arriving again: its Message-ID and its bytes."""
    keys = [f"sha256:{hashlib.sha256(inbound.raw).hexdigest()}"]
    if inbound.message_id:
        keys.insert(0, f"mid:{inbound.message_id.lower()}")
    return keys


def process(message: MessageContext) -> None:
    inbound = message.inbound
    keys = seen_keys(inbound)
    if message.too_large and inbound.message_id:
        keys = keys[:1]  # only the headers were read: their hash says nothing of the body
    seen = db.replies.reply_seen(message.connection, keys)
    if seen is None:
        return
    row = db.replies.get_reply(message.connection, seen)
    assert row is not None
    log.info("message %s already recorded as reply %s", inbound.message_id, seen)
    if message.too_large:
        message.outcome = Outcome(
            seen,
            ReplyKind.REFUSED,
            ReplyState.REFUSED,
            duplicate=True,
            detail=message.too_large,
            too_large=bool(row.recipient_id),
        )
        return
    message.outcome = Outcome(seen, ReplyKind(row.kind), ReplyState(row.state), duplicate=True)
