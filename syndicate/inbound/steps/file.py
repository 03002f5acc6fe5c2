"""Step file: record the message as its one kind, then take the actions the deciding step asked
for (a bounce scored, a reader unsubscribed) in the same transaction, so a message is never
recorded without its action nor acted on without its record.
"""

from __future__ import annotations

import logging

from syndicate import db
from syndicate.db import Connection
from syndicate.inbound.context import MessageContext
from syndicate.inbound.steps.parse import clean
from syndicate.inbound.steps.seen import seen_keys
from syndicate.models import Classification, InboundMessage, ReplyKind, ReplyState

log = logging.getLogger(__name__)


def process(message: MessageContext) -> None:
    conn, result, inbound = message.connection, message.decided, message.inbound
    message.reply_id = record(conn, inbound, result)
    if message.too_large:
        db.replies.update_reply(conn, message.reply_id, size=max(message.size, len(message.raw)))
    message.state = initial_state(result.kind)
    for action in message.actions:
        action(message)
    if message.detail:
        db.replies.update_reply(conn, message.reply_id, detail=message.detail)
    sender = inbound.sender or "unknown sender"
    if message.too_large:
        log.warning("%s: refused a message from %s: %s", message.source, sender, result.reason)
        return
    log.info(
        "%s from %s → reply %s: %s (%s)",
        message.source,
        sender,
        message.reply_id,
        result.kind.value,
        result.reason,
    )


def initial_state(kind: ReplyKind) -> ReplyState:
    if kind in (ReplyKind.COMMENT, ReplyKind.EDITOR_RESPONSE):
        return ReplyState.FILED  # becomes forwarded or forward_pending after forwarding
    if kind in (ReplyKind.BOUNCE, ReplyKind.AUTO_REPLY, ReplyKind.UNSUBSCRIBE):
        return ReplyState.HANDLED
    if kind in (ReplyKind.REFUSED, ReplyKind.MALFORMED):
        return ReplyState.REFUSED
    return ReplyState.FILED


def record(conn: Connection, inbound: InboundMessage, result: Classification) -> int:
    values = {
        "kind": result.kind.value,
        "state": initial_state(result.kind).value,
        "source": inbound.source,
        "message_id": inbound.message_id or None,
        "send_id": result.identity.send_id if result.post_id else None,
        "recipient_id": result.recipient_id,
        "post_id": result.post_id,
        "sender": inbound.sender,
        "sender_name": inbound.sender_name,
        "subject": inbound.subject,
        "text": result.text,
        "raw": inbound.raw,
        "in_reply_to": inbound.in_reply_to,
        "references": " ".join(inbound.references),
        "addresses": list(result.addresses),
        "temporary": result.temporary,
        "reason": result.reason,
        "size": len(inbound.raw),
        "verified": result.verified,
    }
    values = {k: clean(v) if isinstance(v, str) else v for k, v in values.items()}
    return db.replies.insert_reply(conn, values, seen_keys(inbound))
