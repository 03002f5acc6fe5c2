"""Step 7, file it: decide the one kind of a message and record it.

From a reader → a comment on the post; from an editor → an answer about that column; a token
for a send or recipient we do not have, or no token → unmatched, kept with its text for the
author; spam (when a checker is configured) → kept as spam.
"""

from __future__ import annotations

import hashlib
from typing import Any

from syndicate import db
from syndicate.db import Connection
from syndicate.inbound.parse import clean
from syndicate.models import Classification, InboundMessage, ReplyKind, ReplyState

# The purpose in a token → the kind of message it makes. The lead hooks "approve" to issue 8's
# approval handler; until then an approval is recorded and nothing else happens.
PURPOSE_KINDS = {"reply": None, "unsubscribe": ReplyKind.UNSUBSCRIBE, "approve": ReplyKind.APPROVAL}
CHANNEL_KINDS = {"newsletter": ReplyKind.COMMENT, "column": ReplyKind.EDITOR_RESPONSE}


def seen_keys(inbound: InboundMessage) -> list[str]:
    """Keys that recognise the same message arriving again: its Message-ID and its bytes."""
    keys = [f"sha256:{hashlib.sha256(inbound.raw).hexdigest()}"]
    if inbound.message_id:
        keys.insert(0, f"mid:{inbound.message_id.lower()}")
    return keys


def target(
    conn: Connection, send_id: int | None, recipient_id: int | None, sender: str = ""
) -> dict[str, Any]:
    """The stored send and recipient a claim names; {} when either no longer exists.

    Recipient 0 is a send-wide reply address (SendGrid's API takes one Reply-To per request):
    the recipient is then the one of that send's deliveries whose address wrote.
    """
    if send_id is None or recipient_id is None:
        return {}
    send = db.sends.get_send(conn, send_id)
    if recipient_id == 0:
        recipient = db.deliveries.delivered_recipient(conn, send_id, sender) if sender else None
    else:
        recipient = db.recipients.get_recipient(conn, recipient_id)
    if send is None or recipient is None:
        return {}
    return {"send": send, "recipient": recipient}


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
