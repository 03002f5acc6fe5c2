"""Manual sends, the outgoing half: a preview goes to the author, and a receipt once approved.

The preview's Reply-To carries an `approve` token for the send, signed with the time it was
issued, so the author's answer names the send it approves and cannot be forged. The answer comes
back like any reply, through the inbound pipeline: `syndicate/inbound/steps/approve.py` checks
it (token, expiry, the author's DKIM or own MX, the word "approve") and releases the send, then
emails the receipt built here.
"""

from __future__ import annotations

import logging
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from syndicate import db, tokens
from syndicate.db import Engine
from syndicate.db.sends import Send
from syndicate.delivery import dispatch, mime, notices
from syndicate.delivery.compose import compose
from syndicate.delivery.message import Mailbox, OutboundMessage
from syndicate.errors import TransportError
from syndicate.models import (
    Attachment,
    Channel,
    DeliveryState,
    Post,
    Recipient,
    RecipientKind,
)
from syndicate.render import render_edition
from syndicate.scheduling.timeparse import describe
from syndicate.settings import Settings

if TYPE_CHECKING:
    from syndicate.runtime import Runtime

log = logging.getLogger(__name__)


# --- the preview --------------------------------------------------------------------------------


def approve_address(settings: Settings, key: bytes, send_id: int, issued: datetime) -> str:
    issued_at = int(issued.timestamp())
    token = tokens.make(key, "approve", send_id, 0, issued_at=issued_at)
    return tokens.reply_address(settings.mail.reply_address, token)


def build_preview(runtime: Runtime, send_id: int) -> OutboundMessage:
    """The author's preview: instructions first, then the edition exactly as recipients get it."""
    settings, key = runtime.settings, runtime.key
    send, post, audience = _send_post_audience(runtime.engine, send_id)
    channel = Channel(send.channel)
    embargo = db.as_utc(send.embargo_until)
    edition = render_edition(post, channel, settings, runtime.templates, embargo)
    author = Recipient(0, channel.audience, settings.author.email, settings.author.name)
    sender = dispatch.make_sender(settings, key)
    edition_message = compose(edition, author, send_id, sender, runtime.now())
    lines = [
        f"A new {channel.value} is ready: “{post.title}”.",
        "",
        "Nothing goes out until you approve it. Once approved it goes to "
        + _goes_to(channel, audience, embargo, settings)
        + ".",
        "",
        "To approve, reply to this email with the word:  approve",
        f"or run:  syndicate approve {send_id}",
        f"To stop it for good:  syndicate cancel {send_id}",
        "",
        "The edition exactly as it will be sent is attached below.",
    ]
    return notices.notice(
        sender=Mailbox(settings.author.name, settings.mail.from_address),
        to=Mailbox(settings.author.name, settings.author.email),
        reply_to=Mailbox("", approve_address(settings, key, send_id, runtime.now())),
        subject=f"Approve? {edition.subject} ({channel.value}, send {send_id})",
        text="\n".join(lines) + "\n",
        attachments=(
            Attachment(f"send-{send_id}.eml", "message/rfc822", mime.as_bytes(edition_message)),
        ),
        date=runtime.now(),
        message_id=make_msgid(f"syndicate.approve.s{send_id}", settings.mail_domain),
        headers=[("X-Syndicate-Approval", str(send_id)), ("Auto-Submitted", "auto-generated")],
        label="preview",
        number=send_id,
    )


def deliver_to_author(runtime: Runtime, message: OutboundMessage) -> bool:
    """Send one message to the author through the runtime's transport; True when accepted.
    It is labelled with the send's id (the outbox names files by it)."""
    label, settings = message.label, runtime.settings
    try:
        result = notices.send(runtime.transport(), message)
    except TransportError as exc:
        log.error("%s to %s not sent: %s", label, settings.author.email, exc)
        return False
    if result.state is not DeliveryState.SENT:
        log.error("%s to %s not sent: %s", label, settings.author.email, result.detail)
        return False
    return True


def request_previews(runtime: Runtime) -> int:
    """Email a preview for every manual send whose preview has not gone out; returns how many."""
    engine, settings = runtime.engine, runtime.settings
    with engine.connect() as conn:
        waiting = db.sends.awaiting_preview(conn)
    sent = 0
    for send in waiting:
        message = build_preview(runtime, send.id)
        if not deliver_to_author(runtime, message):
            continue
        with engine.begin() as conn:
            db.sends.update_send(conn, send.id, approval_requested_at=runtime.now())
        log.info(
            "send %s (%s) awaits approval: preview emailed to %s",
            send.id,
            send.channel,
            settings.author.email,
        )
        sent += 1
    return sent


# --- the receipt (the author's answer is read by syndicate/inbound/steps/approve.py) ---------


def approval_confirmation(
    runtime: Runtime,
    send_id: int,
    proof: str,
    reply: EmailMessage,
    at: datetime,
) -> OutboundMessage:
    """The author's receipt for an approval: which send, to whom, when, and how to stop it."""
    settings = runtime.settings
    send, post, audience = _send_post_audience(runtime.engine, send_id)
    channel = Channel(send.channel)
    embargo = db.as_utc(send.embargo_until)
    lines = [
        f"Send {send_id} is approved: the {channel.value} “{post.title}”.",
        "",
        f"It goes to {_goes_to(channel, audience, embargo, settings)}.",
        f"Approved by your reply of {format_datetime(at)} ({proof}).",
        "",
        f"If you did not approve it, stop it now:  syndicate cancel {send_id}",
    ]
    answered = [("In-Reply-To", str(reply["Message-ID"]))] if reply.get("Message-ID") else []
    return notices.notice(
        sender=Mailbox(settings.author.name, settings.mail.from_address),
        to=Mailbox(settings.author.name, settings.author.email),
        subject=f"Approved: {post.title} ({channel.value}, send {send_id})",
        text="\n".join(lines) + "\n",
        date=at,
        message_id=make_msgid(f"syndicate.approved.s{send_id}", settings.mail_domain),
        headers=[
            *answered,
            ("X-Syndicate-Approval", str(send_id)),
            ("Auto-Submitted", "auto-generated"),
        ],
        label="approved",
        number=send_id,
    )


def _goes_to(channel: Channel, audience: dict, embargo: datetime | None, settings: Settings) -> str:
    """ "12 readers, not before Saturday …": who an approved send reaches, and from when."""
    count = audience.get(channel.audience.value, {}).get("active", 0)
    who = "readers" if channel.audience is RecipientKind.READER else "editors"
    when = f", not before {describe(embargo, settings.zone)}" if embargo else ""
    return f"{count} {who}{when}"


def _send_post_audience(
    engine: Engine, send_id: int
) -> tuple[Send, Post, dict[str, dict[str, int]]]:
    """The send, its post, and the recipient counts by kind and status."""
    with engine.connect() as conn:
        send = db.sends.get_send(conn, send_id)
        assert send is not None
        post = db.posts.get_post(conn, send.post_id)
        audience = db.recipients.count_recipients(conn)
    assert post is not None
    return send, post, audience
