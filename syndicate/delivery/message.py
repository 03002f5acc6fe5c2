"""The one outgoing message value: what every sender builds and every transport sends.

An edition to a reader, a column draft to an editor, a forward or a notice to the author, an
opt-in confirmation, an approval preview or receipt: each is an `OutboundMessage`. What is the
same for every recipient of a send sits in its `Content`, built once and shared; what differs
per recipient (address, placeholder values, Message-ID, Reply-To, List-Unsubscribe) sits in the
message. Transports serialise it themselves: byte transports through the one MIME writer
(`delivery/mime.py`), SendGrid into its JSON. Nothing here encodes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from syndicate.models import Attachment, Recipient

Headers = tuple[tuple[str, str], ...]


class Mailbox(NamedTuple):
    """A display name and an address, as in `From: Name <address>`."""

    name: str
    address: str


# eq=False: a Content is identified by the object, so the writer can encode it once and find
# that encoding again by identity (a send shares one Content between all its recipients).
@dataclass(frozen=True, eq=False)
class Content:
    """What every recipient of a message gets alike: encoded once, filled per recipient.

    When `personal`, `text` and `html` hold placeholders (`render/placeholders.py`) filled from
    each message's `values`; otherwise they are sent as they are, so a "%%NAME%%" a stranger
    wrote into a forwarded reply stays text. `headers` are those that do not change per
    recipient (List-Id, Precedence, Auto-Submitted, In-Reply-To …), in the order written.
    """

    sender: Mailbox
    subject: str
    date: datetime
    text: str
    html: str = ""  # "" = a text/plain message
    attachments: tuple[Attachment, ...] = ()
    headers: Headers = ()
    personal: bool = False
    # A reply address good for every recipient: the one Reply-To of an API request that cannot
    # carry one per recipient (SendGrid); "" when the content has none.
    shared_reply_to: str = ""


@dataclass(frozen=True)
class OutboundMessage:
    """One message to one recipient, ready for any transport."""

    content: Content
    recipient: Recipient
    envelope_from: str  # the Return-Path (VERP for deliveries)
    message_id: str
    reply_to: Mailbox | None = None
    values: Mapping[str, str] = field(default_factory=dict)  # placeholder → this recipient's
    headers: Headers = ()  # this recipient's own (List-Unsubscribe)
    delivery_id: int = 0
    send_id: int = 0
    # Names one-off messages (forward, preview, confirmation) apart from deliveries, whose ids
    # they do not have: the outbox names files after it and `delivery_id`.
    label: str = ""

    def all_headers(self) -> Headers:
        """Every header other than From, To, Subject, Date, Reply-To and MIME's, in order."""
        return (("Message-ID", self.message_id), *self.content.headers, *self.headers)
