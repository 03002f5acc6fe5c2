"""HMAC-signed tokens naming (send, recipient) for reply addresses and unsubscribe links.

A token must survive being the local part of an email address, which some mail systems
lower-case, so it uses only lower-case letters, digits and '-'. The purpose is part of what is
signed: a reply token can never be used as an unsubscribe token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

# reply: a reader's or editor's answer; unsubscribe: links and mailto; approve: the author's
# answer to a preview of a held send (recipient id 0 stands for the author).
PURPOSES = {"reply": "r", "unsubscribe": "u", "approve": "a"}
_MAC_BYTES = 10  # 80 bits, 16 base32 characters
_TOKEN = re.compile(r"^([a-z])(\d+)-(\d+)-([a-z2-7]{16})$")


@dataclass(frozen=True)
class TokenClaim:
    purpose: str
    send_id: int
    recipient_id: int


def _mac(key: bytes, body: str) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.b32encode(digest).decode().lower()


def make(key: bytes, purpose: str, send_id: int, recipient_id: int) -> str:
    body = f"{PURPOSES[purpose]}{send_id}-{recipient_id}"
    return f"{body}-{_mac(key, body)}"


def verify(key: bytes, token: str, purpose: str | None = None) -> TokenClaim | None:
    """The claim a token makes if its signature is right (and purpose matches), else None."""
    match = _TOKEN.match(token.strip().lower())
    if not match:
        return None
    letter, send_id, recipient_id, mac = match.groups()
    body = f"{letter}{send_id}-{recipient_id}"
    if not hmac.compare_digest(mac, _mac(key, body)):
        return None
    names = {v: k for k, v in PURPOSES.items()}
    if letter not in names or (purpose is not None and names[letter] != purpose):
        return None
    return TokenClaim(names[letter], int(send_id), int(recipient_id))


def reply_address(reply_to: str, token: str) -> str:
    local, domain = reply_to.rsplit("@", 1)
    return f"{local}+{token}@{domain}"


def token_from_address(address: str) -> str | None:
    """The '+TOKEN' part of `local+TOKEN@domain`, if any."""
    local = address.strip().strip("<>").rsplit("@", 1)[0]
    _, plus, token = local.partition("+")
    return token if plus and token else None
