"""Helpers for the web tests: settings for a project copy, an app client, outbox reading, keys."""

from __future__ import annotations

import base64
import json
import re
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from syndicate import settings as settings_module
from syndicate.settings import Settings
from tests.support.tools import missing, require_module, require_tool  # noqa: F401 (shared rule)

CONFIRM_LINK = re.compile(r"https?://\S+/confirm/[A-Za-z0-9_.\-]+")


def load_settings(project: Path) -> Settings:
    return settings_module.load(project / "settings.toml")


def outbox_messages(project: Path, address: str) -> list[EmailMessage]:
    """Every .eml in the project's outbox addressed to `address`, oldest first."""
    folder = project / "outbox"
    found = []
    for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        if address.lower() in str(msg["To"]).lower():
            found.append(msg)
    return found


def without_nonce(page: str) -> str:
    """A page with its per-response CSP nonce blanked, to compare two answers."""
    return re.sub(r'nonce="[^"]+"', 'nonce=""', page)


def confirmation_link(project: Path, address: str) -> str:
    messages = outbox_messages(project, address)
    assert messages, f"no confirmation email for {address} in the outbox"
    text = messages[-1].get_body(preferencelist=("plain",)).get_content()
    match = CONFIRM_LINK.search(text)
    assert match, f"no confirmation link in:\n{text}"
    return match.group(0)


class SigningKey:
    """An ECDSA P-256 key pair like SendGrid's; the public half in the form SendGrid shows."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_b64 = base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: str = "") -> dict[str, str]:
        timestamp = timestamp or str(int(time.time()))
        signature = self.private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
            "Content-Type": "application/json",
        }


def events_body(*events: dict) -> bytes:
    return json.dumps(list(events)).encode()
