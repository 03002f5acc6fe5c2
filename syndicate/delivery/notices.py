"""One-off messages: a forward or a notice to the author, an opt-in confirmation, an approval
preview or receipt, a note to a reader. Each is an `OutboundMessage` of its own Content, sent
alone through the configured transport (`send`).

Their words come from the modules that know them (inbound/forward.py, audience/optin.py,
scheduling/approval.py); this module only shapes them into a message and sends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.utils import make_msgid

from syndicate.delivery.message import Content, Mailbox, OutboundMessage
from syndicate.delivery.transports.base import Transport
from syndicate.models import Attachment, DeliveryResult, Recipient, RecipientKind


def notice(
    *,
    sender: Mailbox,
    to: Mailbox,
    subject: str,
    text: str,
    date: datetime,
    label: str,
    number: int,
    message_id: str = "",
    reply_to: Mailbox | None = None,
    headers: Sequence[tuple[str, str]] = (),
    html: str = "",
    attachments: tuple[Attachment, ...] = (),
    kind: RecipientKind = RecipientKind.READER,
) -> OutboundMessage:
    """A message to one person. `label` and `number` name it apart from deliveries (the outbox
    names its file `<label><number>-<address>.eml`); its envelope sender is `sender.address`,
    and without `message_id` it gets a random one of the sender's domain.

    The text is sent as it is: placeholders are never filled in a notice."""
    domain = sender.address.rpartition("@")[2] or "localhost"
    content = Content(
        sender=sender,
        subject=subject,
        date=date,
        text=text,
        html=html,
        attachments=attachments,
        headers=tuple(headers),
    )
    return OutboundMessage(
        content=content,
        recipient=Recipient(id=0, kind=kind, email=to.address, name=to.name),
        envelope_from=sender.address,
        message_id=message_id or make_msgid(f"syndicate.{label}", domain),
        reply_to=reply_to,
        delivery_id=number,
        label=label,
    )


def send(transport: Transport, message: OutboundMessage) -> DeliveryResult:
    """Open the transport, send the one message, close it. Raises TransportError when the
    transport cannot be opened; a refusal of the message is the returned result."""
    with transport:
        [result] = transport.send_messages([message])
    return result
