"""Step 2, identify: which send and recipient a message answers.

First a reply token in an address (HMAC verified), then one of our signed Message-IDs in
In-Reply-To or References, else unmatched. A token or Message-ID whose signature fails is never
trusted. Bounce tokens (our envelope sender) only ever verify a bounce: see bounce.delivery.
"""

from __future__ import annotations

from syndicate import tokens
from syndicate.inbound.parse import addresses
from syndicate.models import Identity, InboundMessage

TOKEN_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")
UNMATCHED = Identity(purpose="")
# The recipient a send-wide (shared) reply token names: nobody in particular.
SHARED_RECIPIENT = 0


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
