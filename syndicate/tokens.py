"""HMAC-signed tokens naming (send, recipient) for reply addresses, unsubscribe links, bounce
addresses (VERP) and Message-IDs.

A token must survive being the local part of an email address, which some mail systems
lower-case, so it uses only lower-case letters, digits and '-'. The purpose is part of what is
signed: a reply token can never be used as an unsubscribe token. An approval token also carries
the time it was issued (signed), so it can expire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

# reply: a reader's or editor's answer; unsubscribe: links and mailto; approve: the author's
# answer to a preview of a held send (recipient id 0 stands for the author); bounce: the
# envelope sender of one delivery (VERP), where its bounces come back.
PURPOSES = {"reply": "r", "unsubscribe": "u", "approve": "a", "bounce": "b"}
# Purposes whose token must carry its issue time.
TIMED = frozenset({"approve"})
_MAC_BYTES = 10  # 80 bits, 16 base32 characters
_TOKEN = re.compile(r"^([a-z])(\d+)-(\d+)(?:-t(\d{1,12}))?-([a-z2-7]{16})$")
_MESSAGE_ID = re.compile(
    r"^<?syndicate\.s(\d+)\.r(\d+)\.([0-9a-f]{1,32})\.([a-z2-7]{16})@[^<>\s@]+>?$", re.IGNORECASE
)


@dataclass(frozen=True)
class TokenClaim:
    purpose: str
    send_id: int
    recipient_id: int
    issued_at: int | None = None  # Unix seconds, for timed purposes (approve)


def _mac(key: bytes, body: str) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.b32encode(digest).decode().lower()


def make(
    key: bytes, purpose: str, send_id: int, recipient_id: int, *, issued_at: int | None = None
) -> str:
    body = f"{PURPOSES[purpose]}{send_id}-{recipient_id}"
    if purpose in TIMED:
        if issued_at is None:
            raise ValueError(f"a {purpose} token needs its issue time")
        body += f"-t{int(issued_at)}"
    return f"{body}-{_mac(key, body)}"


def verify(key: bytes, token: str, purpose: str | None = None) -> TokenClaim | None:
    """The claim a token makes if its signature is right (and purpose matches), else None.

    A timed purpose's token made before tokens carried their time verifies with
    `issued_at=None`: its signature is ours, but whoever acts on it must refuse it as expired.
    """
    match = _TOKEN.match(token.strip().lower())
    if not match:
        return None
    letter, send_id, recipient_id, issued, mac = match.groups()
    body = f"{letter}{send_id}-{recipient_id}" + (f"-t{issued}" if issued else "")
    if not hmac.compare_digest(mac, _mac(key, body)):
        return None
    names = {v: k for k, v in PURPOSES.items()}
    if letter not in names or (purpose is not None and names[letter] != purpose):
        return None
    if issued and names[letter] not in TIMED:
        return None
    return TokenClaim(
        names[letter], int(send_id), int(recipient_id), int(issued) if issued else None
    )


def reply_address(reply_to: str, token: str) -> str:
    local, domain = reply_to.rsplit("@", 1)
    return f"{local}+{token}@{domain}"


def token_from_address(address: str) -> str | None:
    """The '+TOKEN' part of `local+TOKEN@domain`, if any."""
    local = address.strip().strip("<>").rsplit("@", 1)[0]
    _, plus, token = local.partition("+")
    return token if plus and token else None


# --- Message-IDs ------------------------------------------------------------------------------


def new_installation_id() -> str:
    """A random id for one database: two databases never make the same Message-ID."""
    return secrets.token_hex(6)


def message_id(key: bytes, installation: str, send_id: int, recipient_id: int, domain: str) -> str:
    """`<syndicate.sS.rR.INSTALLATION.MAC@domain>`: the same for every attempt of one delivery,
    different in every installation, and only we can make one that verifies."""
    body = f"s{send_id}.r{recipient_id}.{installation or '0'}"
    return f"<syndicate.{body}.{_mac(key, 'm' + body)}@{domain}>"


def verify_message_id(key: bytes, installation: str, value: str) -> TokenClaim | None:
    """The (send, recipient) one of our Message-IDs names, if it was made here with our key."""
    match = _MESSAGE_ID.match(value.strip())
    if not match:
        return None
    send_id, recipient_id, made_by, mac = match.groups()
    made_by = made_by.lower()
    if made_by != installation.lower():
        return None
    body = f"s{send_id}.r{recipient_id}.{made_by}"
    if not hmac.compare_digest(mac.lower(), _mac(key, "m" + body)):
        return None
    return TokenClaim("message", int(send_id), int(recipient_id))
