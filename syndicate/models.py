"""Plain data passed between the stages of the pipeline.

feed → Post → Edition → OutboundMessage → Transport → DeliveryResult. Nothing here talks to the
database or the network; each stage takes these in and hands these on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Channel(enum.StrEnum):
    NEWSLETTER = "newsletter"
    COLUMN = "column"

    @property
    def audience(self) -> RecipientKind:
        return RecipientKind.READER if self is Channel.NEWSLETTER else RecipientKind.EDITOR


class RecipientKind(enum.StrEnum):
    READER = "reader"
    EDITOR = "editor"


class SendState(enum.StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Post:
    """One blog post as the feed describes it; `guid` is its identity."""

    guid: str
    title: str
    link: str
    author: str
    published: datetime | None
    summary_html: str
    content_html: str
    categories: tuple[str, ...] = ()
    id: int | None = None

    @property
    def has_full_text(self) -> bool:
        return bool(self.content_html.strip())


@dataclass(frozen=True)
class ParsedFeed:
    """What one fetch of the feed yielded: its posts (feed order) and any problems seen."""

    title: str
    posts: list[Post]
    problems: list[str]


@dataclass(frozen=True)
class Recipient:
    id: int
    kind: RecipientKind
    email: str
    name: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Edition:
    """A post rendered once for one channel; per recipient only placeholders are replaced.

    `html` and `text` contain placeholders such as ``%%NAME%%`` (see compose.PLACEHOLDERS).
    """

    post_id: int
    channel: Channel
    subject: str
    html: str
    text: str
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class OutboundMessage:
    """One recipient's message, ready for a transport.

    `data` is the complete message (CRLF, SMTP-ready; a DKIM signature would be added to these
    bytes). API transports that build the message themselves (SendGrid) use `edition`, `values`
    (per-recipient placeholder values) and `message_id` instead, and get empty `data`.
    """

    delivery_id: int
    recipient: Recipient
    envelope_from: str
    data: bytes
    send_id: int = 0
    message_id: str = ""
    edition: Edition | None = None
    values: dict[str, str] = field(default_factory=dict)
    # For API transports: the headers compose would set besides From/To/Subject/Reply-To and
    # MIME ones, the sender's display name, and a send-level Reply-To for APIs that cannot carry
    # one per recipient.
    headers: dict[str, str] = field(default_factory=dict)
    from_name: str = ""
    shared_reply_to: str = ""


@dataclass(frozen=True)
class DeliveryResult:
    delivery_id: int
    state: DeliveryState
    detail: str = ""
    # A FAILED result marks the address bounced unless the failure was not the address's fault
    # (e.g. an API request the provider rejected as a whole).
    bounce: bool = True
    # The transport itself is unavailable (cannot connect, API rate-limited or down): when a
    # whole batch says so, the send stops and the rest waits for a later run.
    outage: bool = False


@dataclass(frozen=True)
class SendSummary:
    send_id: int
    channel: Channel
    post_title: str
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    # Set when the transport could not be opened at all: nothing was attempted, all stay queued.
    error: str = ""
