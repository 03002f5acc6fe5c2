"""The mail inbound sends: the author's copy of a reply, and notices to the people who wrote.

The author's copy is a clean message they can answer from their own client: it keeps the
reply's Message-ID, In-Reply-To and References (as a mailing list does when it redistributes a
message) and sets `Reply-To:` the reader or editor, so the author's answer goes straight to
them and threads under their own message. The unsubscribe confirmation and the
"too large" refusal go to the writer's address on record. All leave through the configured
transport (see `deliver`); steps forward, unsubscribe and verify decide when.
"""

from __future__ import annotations

# delivery's notices are imported in the functions that build or send a message: they load
# premailer and python-docx, which filing a reply (one process per message) never needs.
from datetime import datetime
from email.utils import make_msgid
from typing import TYPE_CHECKING

from syndicate.headers import one_line
from syndicate.models import (
    DeliveryResult,
    InboundMessage,
    Post,
    Recipient,
    ReplyKind,
)
from syndicate.settings import Settings

if TYPE_CHECKING:
    from syndicate.db.replies import Reply
    from syndicate.delivery.message import OutboundMessage
    from syndicate.runtime import Runtime


def forward_message(
    runtime: Runtime, reply: Reply, post: Post, recipient: Recipient | None, at: datetime
) -> OutboundMessage:
    """The author's copy of a comment or an editor's answer."""
    from syndicate.delivery.message import Mailbox
    from syndicate.delivery.notices import notice

    settings = runtime.settings

    name = one_line(reply.sender_name or (recipient.name if recipient else "") or reply.sender)
    kind = ReplyKind(reply.kind)
    values = {
        "id": reply.id,
        "kind": kind.value,
        "name": name,
        "email": reply.sender,
        "publication": (recipient.fields.get("publication", "") if recipient else ""),
        "text": reply.text or "(no text; see the original message)",
        # Not tied to anyone on the lists (a stranger, or a send-wide reply address where only
        # the From line, which proves nothing, names the reader).
        "unmatched": recipient is None,
    }
    body = runtime.templates.get_template("notices/forward.txt.j2").render(reply=values, post=post)
    verb = "answered about" if kind is ReplyKind.EDITOR_RESPONSE else "replied to"
    return notice(
        sender=Mailbox(f"{name} via {one_line(settings.site.name)}", settings.mail.from_address),
        to=Mailbox(settings.author.name, settings.author.email),
        reply_to=Mailbox(name, reply.sender),
        subject=f"{name} {verb} '{post.title}'",
        text=body,
        date=at,
        message_id=_own_message_id(reply.message_id, settings.mail_domain),
        headers=[
            *_threading(reply.in_reply_to, reply.references),
            # RFC 3834: the author's own out-of-office must not answer the reader.
            ("Auto-Submitted", "auto-forwarded"),
            ("X-Syndicate-Reply", f"{reply.id}; kind={kind.value}; post={post.id}"),
        ],
        label="reply",
        number=reply.id,
    )


def _own_message_id(message_id: str | None, domain: str) -> str:
    """The reply's own Message-ID when it can go on the wire as it is (ASCII, one line)."""
    if message_id and message_id.isascii() and one_line(message_id) == message_id:
        return message_id
    return make_msgid("syndicate.reply", domain)


def _threading(in_reply_to: str | None, references: str | None) -> list[tuple[str, str]]:
    return [
        (name, value)
        for name, value in (("In-Reply-To", in_reply_to), ("References", references))
        if value
    ]


def unsubscribe_confirmation(
    runtime: Runtime, recipient: Recipient, request: Reply, at: datetime
) -> OutboundMessage:
    settings = runtime.settings
    first_name = recipient.name.split()[0] if recipient.name.strip() else ""
    body = runtime.templates.get_template("notices/unsubscribed.txt.j2").render(
        recipient={
            "first_name": first_name,
            "email": recipient.email,
            "kind": recipient.kind.value,
        },
        site=settings.site,
        author=settings.author,
    )
    asked = request.message_id or ""
    references = " ".join(filter(None, [request.references, asked])) if asked else ""
    subject = f"You are unsubscribed from {settings.site.name}"
    answered = (asked, references, request.id)
    return _automatic_answer(settings, recipient, subject, body, at, "unsubscribed", answered)


def human_size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 1_000_000 else f"{size / 1000:.0f} KB"


def refusal_notice(
    runtime: Runtime,
    inbound: InboundMessage,
    recipient: Recipient,
    post_title: str,
    size: int,
    at: datetime,
    reply_id: int,
) -> OutboundMessage:
    """Tell a known reader or editor, at their address on record, that their reply was too
    large to pass on."""
    settings = runtime.settings
    body = runtime.templates.get_template("notices/refused.txt.j2").render(
        name=(recipient.name.split() or inbound.sender_name.split() or [""])[0],
        post_title=post_title,
        size=human_size(size),
        limit=human_size(settings.inbound.max_message_bytes),
        author=settings.author,
        site=settings.site,
    )
    references = " ".join([*inbound.references, inbound.message_id]) if inbound.message_id else ""
    subject = f"Not delivered: {inbound.subject or 'your reply'}"
    answered = (inbound.message_id, references, reply_id)
    return _automatic_answer(settings, recipient, subject, body, at, "refused", answered)


def _automatic_answer(
    settings: Settings,
    recipient: Recipient,
    subject: str,
    body: str,
    at: datetime,
    tag: str,
    answered: tuple[str, str, int],
) -> OutboundMessage:
    """The author's automatic answer (RFC 3834) to a reader's message, threaded under it;
    `answered` is that message's Message-ID, its References and its reply id."""
    from syndicate.delivery.message import Mailbox
    from syndicate.delivery.notices import notice

    message_id, references, reply_id = answered
    return notice(
        sender=Mailbox(settings.author.name, settings.mail.from_address),
        to=Mailbox(recipient.name, recipient.email),
        subject=subject,
        text=body,
        date=at,
        message_id=make_msgid(f"syndicate.{tag}", settings.mail_domain),
        headers=[*_threading(message_id, references), ("Auto-Submitted", "auto-replied")],
        label="reply",
        number=reply_id,
        kind=recipient.kind,
    )


def deliver(runtime: Runtime, message: OutboundMessage) -> DeliveryResult:
    """Send one notice through the runtime's transport: the only place inbound sends mail.

    Each is labelled with its reply's id: no delivery row exists for a notice, and the outbox
    names its file reply0000012-… so it never overwrites another message's file."""
    from syndicate.delivery import notices

    return notices.send(runtime.transport(), message)
