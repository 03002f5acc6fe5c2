"""Step verify: what the message claims, checked against what we know.

Whether its writer is the recipient it names (a From line proves nothing by itself: it must be
that recipient's address on record, and a send-wide reply address names no one); then a message
too large to read is refused with its headers kept, its writer told only when they are that
recipient, and one whose structure cannot be read is kept whole as malformed.
"""

from __future__ import annotations

import logging

from syndicate import db
from syndicate.inbound import notices
from syndicate.inbound.context import UNMATCHED, MessageContext, Writer
from syndicate.inbound.steps.identify import SHARED_RECIPIENT
from syndicate.models import Classification, InboundMessage, ReplyKind

log = logging.getLogger(__name__)


def process(message: MessageContext) -> None:
    message.writer = writer(message)
    if message.too_large:
        # A stranger holding someone's token is told nothing, nor is the victim; a shared
        # token names no one, so whoever From names is not told either.
        theirs = message.writer is Writer.RECIPIENT
        message.classification = Classification(
            ReplyKind.REFUSED,
            message.identity,
            message.post_id if theirs else None,
            message.recipient_id if theirs else None,
            "",
            reason=message.too_large,
        )
        if theirs:
            message.afterwards.append(tell_sender_refused)
        return
    if message.inbound.malformed:
        message.classification = Classification(
            ReplyKind.MALFORMED,
            UNMATCHED,
            None,
            None,
            "",
            reason=f"{message.inbound.malformed}; kept whole, not processed",
        )


def writer(message: MessageContext) -> Writer:
    if not message.found:
        return Writer.UNKNOWN
    if message.identity.recipient_id == SHARED_RECIPIENT:
        return Writer.SHARED
    if sent_by(message.inbound, message.found.recipient.email):
        return Writer.RECIPIENT
    return Writer.SOMEONE_ELSE


def sent_by(inbound: InboundMessage, address: str) -> bool:
    return bool(inbound.sender) and inbound.sender.strip().lower() == address.strip().lower()


def tell_sender_refused(message: MessageContext) -> None:
    """Only ever to the address on record for the token's recipient (never a From we have
    not matched to one), so no one can make us mail a third party."""
    engine = message.database
    assert message.found is not None  # told only when they are the recipient it names
    recipient = message.found.recipient
    with engine.connect() as conn:
        post = db.posts.get_post(conn, message.post_id) if message.post_id else None
    try:
        notice = notices.refusal_notice(
            message.runtime,
            message.inbound,
            recipient,
            post.title if post else "",
            len(message.raw),
            message.runtime.now(),
            message.reply_id,
        )
        result = notices.deliver(message.runtime, notice)
        detail = f"sender told: {result.state.value}"
    except Exception as exc:  # the refusal is recorded; the notice is a courtesy
        detail = f"could not tell the sender: {exc}"
    with engine.begin() as conn:
        db.replies.update_reply(conn, message.reply_id, detail=detail)
