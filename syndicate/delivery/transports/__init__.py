"""Transports: where finished messages go (an outbox folder, an SMTP server, …)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from email import policy
from email.message import EmailMessage
from typing import Any

from syndicate.delivery.dkim import signer_for
from syndicate.delivery.transports.base import OnResult, Transport, send_reporting
from syndicate.delivery.transports.null import NullTransport
from syndicate.delivery.transports.outbox import OutboxTransport
from syndicate.delivery.transports.smtp import SmtpTransport
from syndicate.models import (
    Attachment,
    Channel,
    DeliveryResult,
    Edition,
    OutboundMessage,
    Recipient,
)
from syndicate.settings import Settings

__all__ = [
    "NullTransport",
    "OutboxTransport",
    "SigningTransport",
    "SmtpTransport",
    "Transport",
    "make_transport",
    "notice",
    "send_reporting",
]

# Headers of a one-off message that API transports carry as custom headers (threading,
# auto-reply markers); the rest they set themselves.
_CARRIED_HEADERS = ("In-Reply-To", "References", "Auto-Submitted", "X-Auto-Response-Suppress")


def make_transport(settings: Settings) -> Transport:
    """The configured transport; when DKIM is set up, every message it sends is signed."""
    transport = _plain_transport(settings)
    sign = signer_for(settings)
    if sign is not None and transport.needs_bytes:
        return SigningTransport(transport, sign)
    return transport


def _plain_transport(settings: Settings) -> Transport:
    kind = settings.transport.kind
    if kind == "sendgrid":
        # Imported here: the sendgrid package is only needed by those who use it.
        from syndicate.delivery.transports.sendgrid import SendgridTransport

        return SendgridTransport(settings.transport.sendgrid, settings.sendgrid_api_key())
    if kind == "smtp":
        smtp = settings.transport.smtp
        if smtp.ca_file:
            smtp = smtp.model_copy(update={"ca_file": str(settings.path(smtp.ca_file))})
        return SmtpTransport(smtp, settings.smtp_password())
    return OutboxTransport(settings.path(settings.transport.outbox.path))


class SigningTransport:
    """Signs each message's bytes (DKIM) on its way into the wrapped transport.

    Signing here, the last step before the wire, covers deliveries and notices (forwards,
    previews, confirmations) alike, and nothing can change the bytes after the signature.
    API transports that rebuild the message (SendGrid) sign with the provider's own DKIM.
    """

    needs_bytes = True
    reports_each_answer = True

    def __init__(self, inner: Transport, sign: Callable[[bytes], bytes]) -> None:
        self.inner, self.sign = inner, sign
        self.name = inner.name

    def open(self) -> None:
        self.inner.open()

    def send_batch(
        self, messages: list[OutboundMessage], on_result: OnResult | None = None
    ) -> list[DeliveryResult]:
        signed = [replace(m, data=self.sign(m.data)) if m.data else m for m in messages]
        if on_result is None:
            return self.inner.send_batch(signed)
        return send_reporting(self.inner, signed, on_result)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # Counters and settings of the wrapped transport (connections_opened, folder …).
        return getattr(self.inner, name)


def notice(
    message: EmailMessage, recipient: Recipient, *, envelope_from: str, label: str, number: int
) -> OutboundMessage:
    """A one-off message (a forwarded reply, a preview, a confirmation) for any transport.

    SMTP and the outbox send its bytes; an API transport (SendGrid) rebuilds it from its parts,
    so they travel too. `label` and `number` name it apart from deliveries (outbox file names).
    """
    text_part = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    attachments = tuple(_attachment(part) for part in message.iter_attachments())
    edition = Edition(
        post_id=0,
        channel=Channel.NEWSLETTER,
        subject=str(message.get("Subject", "")),
        html=html_part.get_content() if html_part is not None else "",
        text=text_part.get_content() if text_part is not None else "",
        attachments=attachments,
    )
    reply_to = message["Reply-To"].addresses[0].addr_spec if message["Reply-To"] else ""
    sender = message["From"].addresses[0] if message["From"] else None
    return OutboundMessage(
        delivery_id=number,
        recipient=recipient,
        envelope_from=envelope_from,
        data=message.as_bytes(policy=policy.SMTP),
        message_id=str(message.get("Message-ID", "")),
        edition=edition,
        headers={name: str(message[name]) for name in _CARRIED_HEADERS if message[name]},
        from_name=sender.display_name if sender else "",
        shared_reply_to=reply_to or envelope_from,
        label=label,
    )


def _attachment(part: EmailMessage) -> Attachment:
    content = part.get_content()
    if isinstance(content, EmailMessage):  # message/rfc822: the message itself, as bytes
        data = content.as_bytes(policy=policy.SMTP)
    elif isinstance(content, str):
        data = content.encode("utf-8")
    else:
        data = bytes(content)
    return Attachment(part.get_filename() or "attachment", part.get_content_type(), data)
