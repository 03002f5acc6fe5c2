"""Manual sends: a preview goes to the author, and a reply saying "approve" releases the send.

The preview's Reply-To carries an `approve` token for the send (tokens.make(key, "approve",
send_id, 0)), so a reply names the send it approves and cannot be forged. Only a reply from the
author's own address (author.email) approves; anyone else's is refused and changes nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr

import html2text
from sqlalchemy.engine import Engine

from syndicate import dispatch, sends, store, tokens
from syndicate.compose import compose
from syndicate.errors import TransportError
from syndicate.models import (
    Channel,
    DeliveryState,
    Recipient,
    RecipientKind,
    SendState,
)
from syndicate.render import make_environment, render_edition
from syndicate.schedule import describe
from syndicate.settings import Settings
from syndicate.transports import make_transport, notice

log = logging.getLogger(__name__)

APPROVE_WORDS = ("approve", "approved", "yes, approve", "ok approve")


@dataclass(frozen=True)
class ApprovalResult:
    """What became of an approval reply: `accepted` means the send is now released."""

    accepted: bool
    send_id: int | None
    reason: str


# --- the preview --------------------------------------------------------------------------------


def approve_address(settings: Settings, key: bytes, send_id: int) -> str:
    return tokens.reply_address(
        settings.mail.reply_address, tokens.make(key, "approve", send_id, 0)
    )


def build_preview(engine: Engine, settings: Settings, send_id: int, key: bytes) -> EmailMessage:
    """The author's preview: instructions first, then the edition exactly as recipients get it."""
    with engine.connect() as conn:
        send = store.get_send(conn, send_id)
        assert send is not None
        post = store.get_post(conn, send["post_id"])
        audience = store.count_recipients(conn)
    assert post is not None
    channel = Channel(send["channel"])
    env = make_environment(settings.path(settings.paths.templates))
    edition = render_edition(post, channel, settings, env, store.as_utc(send["embargo_until"]))
    author = Recipient(0, channel.audience, settings.author.email, settings.author.name)
    sender = dispatch.make_sender(settings, key)
    edition_message = compose(edition, author, send_id, sender, store.now())
    count = audience.get(channel.audience.value, {}).get("active", 0)
    who = "readers" if channel.audience is RecipientKind.READER else "editors"
    embargo = store.as_utc(send["embargo_until"])
    lines = [
        f"A new {channel.value} is ready: “{post.title}”.",
        "",
        f"Nothing goes out until you approve it. Once approved it goes to {count} {who}"
        + (f", not before {describe(embargo, settings.zone)}" if embargo else "")
        + ".",
        "",
        "To approve, reply to this email with the word:  approve",
        f"or run:  syndicate approve {send_id}",
        f"To stop it for good:  syndicate cancel {send_id}",
        "",
        "The edition exactly as it will be sent is attached below.",
    ]
    msg = EmailMessage()
    msg["From"] = Address(settings.author.name, addr_spec=settings.mail.from_address)
    msg["To"] = Address(settings.author.name, addr_spec=settings.author.email)
    msg["Subject"] = f"Approve? {edition.subject} ({channel.value}, send {send_id})"
    msg["Date"] = format_datetime(store.now())
    msg["Message-ID"] = f"<syndicate.approve.s{send_id}@{settings.mail_domain}>"
    msg["Reply-To"] = approve_address(settings, key, send_id)
    msg["X-Syndicate-Approval"] = str(send_id)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("\n".join(lines) + "\n")
    msg.add_attachment(edition_message)
    return msg


def deliver_to_author(settings: Settings, message: EmailMessage, send_id: int) -> bool:
    """Send one message to the author through the configured transport; True when accepted.

    The only place approval touches a transport, so a change of the transport interface is
    one edit here. It is labelled with the send's id (the outbox names files by it).
    """
    transport = make_transport(settings)
    author = Recipient(0, RecipientKind.READER, settings.author.email, settings.author.name)
    try:
        transport.open()
        [result] = transport.send_batch(
            [
                notice(
                    message,
                    author,
                    envelope_from=settings.mail.from_address,
                    label="preview",
                    number=send_id,
                )
            ]
        )
    except TransportError as exc:
        log.error("preview to %s not sent: %s; will retry", settings.author.email, exc)
        return False
    finally:
        transport.close()
    if result.state is not DeliveryState.SENT:
        log.error("preview to %s not sent: %s; will retry", settings.author.email, result.detail)
        return False
    return True


def request_previews(engine: Engine, settings: Settings) -> int:
    """Email a preview for every manual send whose preview has not gone out; returns how many."""
    key = store.hmac_key(engine, settings.hmac_key_from_env())
    with engine.connect() as conn:
        waiting = store.awaiting_preview(conn)
    sent = 0
    for send in waiting:
        message = build_preview(engine, settings, send["id"], key)
        if not deliver_to_author(settings, message, send["id"]):
            continue
        with engine.begin() as conn:
            store.update_send(conn, send["id"], approval_requested_at=store.now())
        log.info(
            "send %s (%s) awaits approval: preview emailed to %s",
            send["id"],
            send["channel"],
            settings.author.email,
        )
        sent += 1
    return sent


# --- the reply ----------------------------------------------------------------------------------


def _recipient_addresses(message: EmailMessage) -> list[str]:
    headers = []
    for name in ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"):
        headers.extend(str(v) for v in message.get_all(name, []))
    return [address for _, address in getaddresses(headers) if address]


def _first_words(message: EmailMessage) -> str:
    """The reply's own first line, ignoring quoted text and blank lines."""
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    text = body.get_content()
    if body.get_content_subtype() == "html":
        text = html2text.html2text(text)
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(">"):
            return " ".join(stripped.lower().split())
    return ""


def _fails_authentication(message: EmailMessage) -> bool:
    results = " ".join(str(v) for v in message.get_all("Authentication-Results", []))
    return bool(re.search(r"\bdmarc=fail\b", results, re.IGNORECASE))


def handle_approval_reply(
    engine: Engine, settings: Settings, message: EmailMessage
) -> ApprovalResult:
    """Approve the send a reply names, if the reply is the author's and says "approve".

    Called by the inbound-mail pipeline for mail addressed to an `approve` token.
    """
    key = store.hmac_key(engine, settings.hmac_key_from_env())
    claim = None
    for address in _recipient_addresses(message):
        token = tokens.token_from_address(address)
        if token:
            claim = tokens.verify(key, token, "approve")
            if claim:
                break
    if claim is None:
        return ApprovalResult(False, None, "no valid approval token in the recipient address")
    send_id = claim.send_id
    sender = parseaddr(str(message.get("From", "")))[1].strip().lower()
    if sender != settings.author.email.strip().lower():
        log.warning(
            "approval of send %s refused: the reply came from %r, not the author (%s)",
            send_id,
            sender,
            settings.author.email,
        )
        return ApprovalResult(False, send_id, f"only {settings.author.email} may approve")
    if _fails_authentication(message):
        log.warning("approval of send %s refused: the reply failed DMARC", send_id)
        return ApprovalResult(False, send_id, "the reply failed sender authentication (DMARC)")
    words = _first_words(message)
    if not words.startswith(APPROVE_WORDS):
        return ApprovalResult(
            False, send_id, f"the reply does not say 'approve' (it starts {words[:40]!r})"
        )
    with engine.connect() as conn:
        send = store.get_send(conn, send_id)
    if send is None:
        return ApprovalResult(False, send_id, "that send no longer exists")
    if send["state"] in (SendState.DONE.value, SendState.CANCELLED.value):
        return ApprovalResult(False, send_id, f"send {send_id} is already {send['state']}")
    _, changed = sends.approve(engine, send_id, by="reply")
    reason = "approved by reply" if changed else "already approved"
    log.info("send %s: %s from %s", send_id, reason, sender)
    return ApprovalResult(True, send_id, reason)
