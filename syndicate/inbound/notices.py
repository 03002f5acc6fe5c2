"""The mail inbound sends: the author's copy of a reply, and notices to the people who wrote.

The author's copy is a clean message they can answer from their own client: it keeps the
reply's Message-ID, In-Reply-To and References (as a mailing list does when it redistributes a
message) and sets `Reply-To:` the reader or editor, so the author's answer goes straight to
them and threads under their own message. The unsubscribe confirmation and the
"too large" refusal go to the writer's address on record. All leave through the configured
transport (see `deliver`); steps forward, unsubscribe and verify decide when.
"""

from __future__ import annotations

# compose, render and transports are imported in the functions that build or send a message:
# they load premailer and python-docx, which filing a reply (one process per message) never needs.
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from syndicate.db.replies import Reply
from syndicate.models import (
    DeliveryResult,
    InboundMessage,
    Post,
    Recipient,
    RecipientKind,
    ReplyKind,
)
from syndicate.settings import Settings


def forward_message(
    settings: Settings, reply: Reply, post: Post, recipient: Recipient | None, at: datetime
) -> EmailMessage:
    """The author's copy of a comment or an editor's answer."""
    from syndicate.delivery.compose import one_line
    from syndicate.render.environment import make_environment

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
    env = make_environment(settings.path(settings.paths.templates))
    body = env.get_template("notices/forward.txt.j2").render(reply=values, post=post)
    verb = "answered about" if kind is ReplyKind.EDITOR_RESPONSE else "replied to"
    msg = EmailMessage()
    msg["From"] = Address(
        f"{name} via {one_line(settings.site.name)}", addr_spec=settings.mail.from_address
    )
    msg["To"] = Address(one_line(settings.author.name), addr_spec=settings.author.email)
    msg["Reply-To"] = Address(name, addr_spec=reply.sender)
    set_subject(msg, f"{name} {verb} '{post.title}'")
    msg["Date"] = format_datetime(at)
    msg["Message-ID"] = reply.message_id or make_msgid("syndicate.reply", settings.mail_domain)
    if reply.in_reply_to:
        msg["In-Reply-To"] = reply.in_reply_to
    if reply.references:
        msg["References"] = reply.references
    # RFC 3834: the author's own out-of-office must not answer the reader.
    msg["Auto-Submitted"] = "auto-forwarded"
    msg["X-Syndicate-Reply"] = f"{reply.id}; kind={kind.value}; post={post.id}"
    msg.set_content(body)
    return msg


def set_subject(msg: EmailMessage, subject: str) -> None:
    """Subject as RFC 2047 words that carry each space inside a word. The email package's own
    folding can leave an empty encoded-word next to a space (`work =?utf-8?q??=`), and mail
    clients then show "the work— and" for "the work — and"."""
    from syndicate.delivery.compose import one_line

    subject = one_line(subject)
    if subject.isascii():
        msg["Subject"] = subject
    else:
        msg.set_raw("Subject", Header(subject, "utf-8", header_name="Subject").encode())


def unsubscribe_confirmation(
    settings: Settings, recipient: Recipient, request: Reply, at: datetime
) -> EmailMessage:
    from syndicate.delivery.compose import one_line
    from syndicate.render.environment import make_environment

    env = make_environment(settings.path(settings.paths.templates))
    first_name = recipient.name.split()[0] if recipient.name.strip() else ""
    body = env.get_template("notices/unsubscribed.txt.j2").render(
        recipient={
            "first_name": first_name,
            "email": recipient.email,
            "kind": recipient.kind.value,
        },
        site=settings.site,
        author=settings.author,
    )
    msg = EmailMessage()
    msg["From"] = Address(one_line(settings.author.name), addr_spec=settings.mail.from_address)
    msg["To"] = Address(one_line(recipient.name), addr_spec=recipient.email)
    set_subject(msg, f"You are unsubscribed from {settings.site.name}")
    msg["Date"] = format_datetime(at)
    msg["Message-ID"] = make_msgid("syndicate.unsubscribed", settings.mail_domain)
    if request.message_id:
        msg["In-Reply-To"] = request.message_id
        msg["References"] = " ".join(filter(None, [request.references, request.message_id]))
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content(body)
    return msg


def human_size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 1_000_000 else f"{size / 1000:.0f} KB"


def refusal_notice(
    settings: Settings,
    inbound: InboundMessage,
    recipient: Recipient,
    post_title: str,
    size: int,
    at: datetime,
) -> EmailMessage:
    """Tell a known reader or editor, at their address on record, that their reply was too
    large to pass on."""
    from syndicate.delivery.compose import one_line
    from syndicate.render.environment import make_environment

    env = make_environment(settings.path(settings.paths.templates))
    body = env.get_template("notices/refused.txt.j2").render(
        name=(recipient.name.split() or inbound.sender_name.split() or [""])[0],
        post_title=post_title,
        size=human_size(size),
        limit=human_size(settings.inbound.max_message_bytes),
        author=settings.author,
        site=settings.site,
    )
    msg = EmailMessage()
    msg["From"] = Address(one_line(settings.author.name), addr_spec=settings.mail.from_address)
    msg["To"] = Address(one_line(recipient.name), addr_spec=recipient.email)
    set_subject(msg, f"Not delivered: {inbound.subject or 'your reply'}")
    msg["Date"] = format_datetime(at)
    msg["Message-ID"] = make_msgid("syndicate.refused", settings.mail_domain)
    if inbound.message_id:
        msg["In-Reply-To"] = inbound.message_id
        msg["References"] = " ".join([*inbound.references, inbound.message_id])
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content(body)
    return msg


def deliver(
    settings: Settings, message: EmailMessage, to_address: str, to_name: str, reply_id: int
) -> DeliveryResult:
    """Send one notice through the configured transport. The only place inbound sends mail:
    every transport takes it through transports.notice.

    It is labelled with the reply's id: no delivery row exists for a notice, and the outbox
    names its file reply0000012-… so it never overwrites another message's file."""
    from syndicate.delivery.transports import make_transport, notice

    recipient = Recipient(id=0, kind=RecipientKind.READER, email=to_address, name=to_name)
    outbound = notice(
        message,
        recipient,
        envelope_from=settings.mail.from_address,
        label="reply",
        number=reply_id,
    )
    transport = make_transport(settings)
    transport.open()
    try:
        return transport.send_batch([outbound])[0]
    finally:
        transport.close()
