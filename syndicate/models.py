"""Plain data passed between the stages of the pipeline.

feed → Post → Edition → OutboundMessage (delivery/message.py) → Transport → DeliveryResult.
Nothing here talks to the database or the network; each stage takes these in and hands these on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage


class Channel(enum.StrEnum):
    NEWSLETTER = "newsletter"
    COLUMN = "column"

    @property
    def audience(self) -> RecipientKind:
        return RecipientKind.READER if self is Channel.NEWSLETTER else RecipientKind.EDITOR


class RecipientKind(enum.StrEnum):
    READER = "reader"
    EDITOR = "editor"


class RecipientStatus(enum.StrEnum):
    """Only an active recipient is sent to; the others say why they stopped (their first cause
    stays: see db.recipients.mark_recipient)."""

    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class SendState(enum.StrEnum):
    # held: stopped by the author; awaiting_approval: a manual-policy send waiting for "approve".
    HELD = "held"
    AWAITING_APPROVAL = "awaiting_approval"
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


class ReplyKind(enum.StrEnum):
    """What an inbound message turned out to be; every message gets exactly one."""

    COMMENT = "comment"  # a reader's reply to an edition
    EDITOR_RESPONSE = "editor_response"  # an editor's answer about a column draft
    UNSUBSCRIBE = "unsubscribe"
    BOUNCE = "bounce"
    AUTO_REPLY = "auto_reply"
    SPAM = "spam"
    UNMATCHED = "unmatched"  # a person's words we cannot tie to a send: kept for the author
    APPROVAL = "approval"  # the author's answer to a held send's preview (approve token)
    REFUSED = "refused"  # too large or unreadable: recorded, not processed
    MALFORMED = "malformed"  # MIME too deep or undecodable: recorded once, never retried


class ReplyState(enum.StrEnum):
    """Where a recorded message stands; one per message."""

    FORWARDED = "forwarded"  # filed and forwarded to the author
    FORWARD_PENDING = "forward_pending"  # filed; forwarding failed, retried on the next poll
    FILED = "filed"  # filed, nothing to forward (forwarding off, unmatched, spam, approval)
    HANDLED = "handled"  # an action was taken: unsubscribed, bounce scored, auto-reply noted
    REFUSED = "refused"


@dataclass(frozen=True)
class InboundMessage:
    """One received message: the bytes exactly as received plus what parsing could read."""

    raw: bytes
    message: EmailMessage
    source: str
    message_id: str
    sender: str
    sender_name: str
    subject: str
    in_reply_to: str
    references: tuple[str, ...]
    envelope_recipients: tuple[str, ...] = ()
    defects: tuple[str, ...] = ()
    malformed: str = ""  # why the structure could not be read (then only headers are parsed)


@dataclass(frozen=True)
class Identity:
    """Who and what a message answers: from a verified token or one of our Message-IDs."""

    purpose: str  # reply | unsubscribe | approve | "" when unmatched
    send_id: int | None = None
    recipient_id: int | None = None
    via: str = ""  # "token:<header>", "message-id", or "" when unmatched
    rejected_tokens: tuple[str, ...] = ()  # tokens seen whose signature did not verify


@dataclass(frozen=True)
class Classification:
    """The outcome of the pipeline's read-only steps: what `inbound classify` prints."""

    kind: ReplyKind
    identity: Identity
    post_id: int | None
    recipient_id: int | None
    text: str
    addresses: tuple[str, ...] = ()
    temporary: bool = False
    reason: str = ""
    # A bounce: tied to one of our deliveries (VERP or signed Message-ID) or not.
    verified: bool | None = None
