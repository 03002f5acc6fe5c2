"""Step 2, identify: which send and recipient a message answers.

First a reply token in an address (HMAC verified), then one of our signed Message-IDs in
In-Reply-To or References, else unmatched. A token or Message-ID whose signature fails is never
trusted. Bounce tokens (our envelope sender) only ever verify a bounce: see bounce.verp_claim.
"""

from __future__ import annotations

from syndicate import tokens
from syndicate.inbound.parse import addresses
from syndicate.models import Identity, InboundMessage

TOKEN_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")
UNMATCHED = Identity(purpose="")


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
        return Identity(
            claim.purpose, claim.send_id, claim.recipient_id, f"token:{where}", tuple(rejected)
        )
    for msgid in (inbound.in_reply_to, *reversed(inbound.references)):
        claim = tokens.verify_message_id(key, installation, msgid) if msgid else None
        if claim is not None:
            return Identity(
                "reply", claim.send_id, claim.recipient_id, "message-id", tuple(rejected)
            )
    return Identity("", rejected_tokens=tuple(dict.fromkeys(rejected)))


def candidate_addresses(inbound: InboundMessage) -> list[tuple[str, str]]:
    found = [("envelope", a) for a in inbound.envelope_recipients]
    for name in TOKEN_HEADERS:
        found.extend((name, a) for a in addresses(inbound.message, name))
    return found
