"""Step 2, identify: which send and recipient a message answers.

First a reply token in an address (HMAC verified), then one of our Message-IDs in In-Reply-To or
References, else unmatched. A token whose signature fails is noted and never trusted.
"""

from __future__ import annotations

import re

from syndicate import tokens
from syndicate.inbound.parse import addresses
from syndicate.models import Identity, InboundMessage

TOKEN_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")
UNMATCHED = Identity(purpose="")


def identify(inbound: InboundMessage, key: bytes, domain: str) -> Identity:
    rejected: list[str] = []
    for where, address in _candidate_addresses(inbound):
        token = tokens.token_from_address(address)
        if not token:
            continue
        claim = tokens.verify(key, token)
        if claim is None:
            rejected.append(token)
            continue
        return Identity(
            claim.purpose, claim.send_id, claim.recipient_id, f"token:{where}", tuple(rejected)
        )
    ours = re.compile(rf"^<syndicate\.s(\d+)\.r(\d+)@{re.escape(domain)}>$", re.IGNORECASE)
    for msgid in (inbound.in_reply_to, *reversed(inbound.references)):
        match = ours.match(msgid)
        if match:
            send_id, recipient_id = (int(g) for g in match.groups())
            return Identity("reply", send_id, recipient_id, "message-id", tuple(rejected))
    return Identity("", rejected_tokens=tuple(dict.fromkeys(rejected)))


def _candidate_addresses(inbound: InboundMessage) -> list[tuple[str, str]]:
    found = [("envelope", a) for a in inbound.envelope_recipients]
    for name in TOKEN_HEADERS:
        found.extend((name, a) for a in addresses(inbound.message, name))
    return found
