"""Step identify: which send and recipient a message answers.

First a reply token in an address (HMAC verified), then one of our signed Message-IDs in
In-Reply-To or References, else unmatched. A token or Message-ID whose signature fails is never
trusted. Bounce tokens (our envelope sender) only ever verify a bounce: see bounce.delivery.
A malformed message names nothing: its headers are not read further.
"""

from __future__ import annotations

from syndicate import db, tokens
from syndicate.db import Connection
from syndicate.inbound.context import MessageContext, Target
from syndicate.inbound.steps.parse import addresses
from syndicate.models import Identity, InboundMessage

TOKEN_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")
# The recipient a send-wide (shared) reply token names: nobody in particular.
SHARED_RECIPIENT = 0


def process(message: MessageContext) -> None:
    conn = message.connection
    message.installation = db.meta.known_installation_id(conn)
    if message.inbound.malformed:
        return
    message.identity = identify(message.inbound, message.key, message.installation)
    message.found = target(
        conn, message.identity.send_id, message.identity.recipient_id, message.inbound.sender
    )


def identify(inbound: InboundMessage, key: bytes, installation: str) -> Identity:
    rejected: list[str] = []
    for where, address in candidate_addresses(inbound):
        token = tokens.token_from_address(address)
        if not token:
            continue
        claim = tokens.verify(key, token)
        if claim is None:
            rejected.append(token)
            continue
        if claim.purpose == "bounce":
            continue
        if claim.purpose == "reply" and claim.recipient_id == SHARED_RECIPIENT:
            # A send-wide token names no one; the reader's own signed Message-ID of the same
            # send, when the reply quotes it, does.
            own = _by_message_id(inbound, key, installation, tuple(rejected))
            if own is not None and own.send_id == claim.send_id:
                return own
        return Identity(
            claim.purpose, claim.send_id, claim.recipient_id, f"token:{where}", tuple(rejected)
        )
    found = _by_message_id(inbound, key, installation, tuple(rejected))
    return found or Identity("", rejected_tokens=tuple(dict.fromkeys(rejected)))


def _by_message_id(
    inbound: InboundMessage, key: bytes, installation: str, rejected: tuple[str, ...]
) -> Identity | None:
    for msgid in (inbound.in_reply_to, *reversed(inbound.references)):
        claim = tokens.verify_message_id(key, installation, msgid) if msgid else None
        if claim is not None:
            return Identity("reply", claim.send_id, claim.recipient_id, "message-id", rejected)
    return None


def candidate_addresses(inbound: InboundMessage) -> list[tuple[str, str]]:
    found = [("envelope", a) for a in inbound.envelope_recipients]
    for name in TOKEN_HEADERS:
        found.extend((name, a) for a in addresses(inbound.message, name))
    return found


def target(
    conn: Connection, send_id: int | None, recipient_id: int | None, sender: str = ""
) -> Target | None:
    """The stored send and recipient a claim names; None when either no longer exists.

    Recipient 0 is a send-wide reply address (SendGrid's API takes one Reply-To per request):
    the recipient is then the one of that send's deliveries whose address wrote.
    """
    if send_id is None or recipient_id is None:
        return None
    send = db.sends.get_send(conn, send_id)
    if recipient_id == SHARED_RECIPIENT:
        recipient = db.deliveries.delivered_recipient(conn, send_id, sender) if sender else None
    else:
        recipient = db.recipients.get_recipient(conn, recipient_id)
    if send is None or recipient is None:
        return None
    return Target(send, recipient)
