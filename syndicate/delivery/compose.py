"""An Edition → one `OutboundMessage` per recipient: values filled, headers set, tokens signed.

This is the only per-recipient work in the pipeline, so it stays cheap: a recipient's values
(tokens, links, names) and a small value object; the edition becomes one shared `Content`,
encoded once by the MIME writer (`delivery/mime.py`). The list headers a bulk message carries
are decided here and nowhere else (`list_headers`, `unsubscribe_headers`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import make_msgid
from typing import Protocol

from syndicate import tokens
from syndicate.delivery.message import Content, Headers, Mailbox, OutboundMessage
from syndicate.headers import one_line
from syndicate.models import Channel, Edition, Recipient
from syndicate.render import placeholders as ph

_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in ph.ALL))


@dataclass(frozen=True)
class Sender:
    """Everything about the sending side that is the same for every message of a send."""

    name: str
    from_address: str
    reply_address: str
    base_url: str
    list_name: str
    list_id: str
    key: bytes
    # This database's installation id (db.meta.installation_id): part of every Message-ID.
    installation: str = ""
    # Envelope sender base (bounces+TOKEN@domain); "" = reply_address.
    bounce_address: str = ""

    @property
    def domain(self) -> str:
        return self.reply_address.rsplit("@", 1)[1]


def message_id(sender: Sender, send_id: int, recipient_id: int) -> str:
    """Signed, unique per installation and stable per delivery: a retried message keeps its
    Message-ID, a new database never repeats one, and a reply's In-Reply-To leads back to the
    delivery only if we made it. A message that is no delivery (a test send, a preview: send
    or recipient 0) gets a random one."""
    if not send_id or not recipient_id:
        return make_msgid("syndicate.once", sender.domain)
    return tokens.message_id(sender.key, sender.installation, send_id, recipient_id, sender.domain)


def envelope_sender(sender: Sender, send_id: int, recipient_id: int) -> str:
    """The Return-Path of one delivery (VERP): its bounces come back naming it, signed."""
    if not send_id or not recipient_id:
        return sender.from_address
    token = tokens.make(sender.key, "bounce", send_id, recipient_id)
    return tokens.reply_address(sender.bounce_address or sender.reply_address, token)


def recipient_values(recipient: Recipient, send_id: int, sender: Sender) -> dict[str, str]:
    reply_token = tokens.make(sender.key, "reply", send_id, recipient.id)
    unsubscribe_token = tokens.make(sender.key, "unsubscribe", send_id, recipient.id)
    first_name = recipient.name.split()[0] if recipient.name.strip() else ""
    return {
        ph.NAME: recipient.name,
        ph.FIRST_NAME: first_name,
        ph.GREETING_NAME: first_name or "there",
        ph.EMAIL: recipient.email,
        ph.REPLY_ADDRESS: tokens.reply_address(sender.reply_address, reply_token),
        ph.UNSUBSCRIBE_URL: f"{sender.base_url}/unsubscribe/{unsubscribe_token}",
        ph.UNSUBSCRIBE_MAILTO: (
            f"mailto:{tokens.reply_address(sender.reply_address, unsubscribe_token)}"
            "?subject=unsubscribe"
        ),
    }


def fill(template: str, values: Mapping[str, str], *, escape: bool) -> str:
    """A text (or, escaped, HTML) template with one recipient's values in place."""
    if escape:
        return _PLACEHOLDER.sub(lambda m: html.escape(values[m.group(0)], quote=True), template)
    return _PLACEHOLDER.sub(lambda m: values[m.group(0)], template)


def shared_reply_address(sender: Sender, send_id: int) -> str:
    """A reply address naming the send but no recipient (recipient 0), for transports that
    cannot set Reply-To per recipient: the reply's From then identifies the reader."""
    return tokens.reply_address(sender.reply_address, tokens.make(sender.key, "reply", send_id, 0))


def list_id(channel: Channel, sender: Sender) -> str:
    """The List-Id header: the newsletter's list, or the column's own list for editors (so a
    filter or a client's list view never mixes a syndicated column with the newsletter)."""
    if channel is Channel.COLUMN:
        column_id = "column." + sender.list_id.removeprefix("newsletter.")
        return f"{one_line(sender.list_name)} column <{column_id}>"
    return f"{one_line(sender.list_name)} <{sender.list_id}>"


def offers_unsubscribe(channel: Channel) -> bool:
    """Only readers get List-Unsubscribe: a client's "Unsubscribe" banner on a column draft would
    look like a syndicate mailing an editor; editors leave by reply or by the author's hand."""
    return channel is Channel.NEWSLETTER


def list_headers(channel: Channel, sender: Sender) -> Headers:
    """The bulk-mail headers every recipient of the channel gets alike; with
    `unsubscribe_headers`, the one place the list headers are decided."""
    shared: list[tuple[str, str]] = [("List-Id", list_id(channel, sender))]
    if offers_unsubscribe(channel):
        shared.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    if channel is Channel.NEWSLETTER:
        shared.append(("Precedence", "bulk"))
    shared.append(("X-Auto-Response-Suppress", "OOF, AutoReply"))
    return tuple(shared)


def unsubscribe_headers(channel: Channel, values: Mapping[str, str]) -> Headers:
    """A reader's own List-Unsubscribe (RFC 8058 one-click with the List-Unsubscribe-Post of
    `list_headers`; DKIM covers both)."""
    if not offers_unsubscribe(channel):
        return ()
    unsubscribe = f"<{values[ph.UNSUBSCRIBE_URL]}>, <{values[ph.UNSUBSCRIBE_MAILTO]}>"
    return (("List-Unsubscribe", unsubscribe),)


def edition_content(edition: Edition, sender: Sender, send_id: int, date: datetime) -> Content:
    """What every recipient of one edition of a send shares."""
    return Content(
        sender=Mailbox(sender.name, sender.from_address),
        subject=edition.subject,
        date=date,
        text=edition.text,
        html=edition.html,
        attachments=edition.attachments,
        headers=list_headers(edition.channel, sender),
        personal=True,
        shared_reply_to=shared_reply_address(sender, send_id),
    )


def personalise(
    content: Content,
    channel: Channel,
    recipient: Recipient,
    send_id: int,
    sender: Sender,
    *,
    delivery_id: int = 0,
) -> OutboundMessage:
    """One recipient's message of an edition's content."""
    values = recipient_values(recipient, send_id, sender)
    return OutboundMessage(
        content=content,
        recipient=recipient,
        envelope_from=envelope_sender(sender, send_id, recipient.id),
        message_id=message_id(sender, send_id, recipient.id),
        reply_to=Mailbox(sender.name, values[ph.REPLY_ADDRESS]),
        values=values,
        headers=unsubscribe_headers(channel, values),
        delivery_id=delivery_id,
        send_id=send_id,
    )


def compose(
    edition: Edition, recipient: Recipient, send_id: int, sender: Sender, date: datetime
) -> OutboundMessage:
    """One message of an edition, on its own (a preview, a test copy); a send uses `Composer`."""
    content = edition_content(edition, sender, send_id, date)
    return personalise(content, edition.channel, recipient, send_id, sender)


class Composer:
    """Recipient → OutboundMessage for one send; each edition's Content is built once (once per
    editor profile for the column), so the MIME writer encodes it once.

    `editions` is the send's `render.EditionCache` (anything with `for_recipient`)."""

    def __init__(self, editions: _Editions, sender: Sender, send_id: int, date: datetime) -> None:
        self.editions, self.sender, self.send_id, self.date = editions, sender, send_id, date
        self._contents: dict[int, tuple[Edition, Content]] = {}

    def content(self, edition: Edition) -> Content:
        key = id(edition)
        if key not in self._contents:  # the edition is kept with it: its id stays its own
            self._contents[key] = (
                edition,
                edition_content(edition, self.sender, self.send_id, self.date),
            )
        return self._contents[key][1]

    def message(self, delivery_id: int, recipient: Recipient) -> OutboundMessage:
        edition = self.editions.for_recipient(recipient)
        return personalise(
            self.content(edition),
            edition.channel,
            recipient,
            self.send_id,
            self.sender,
            delivery_id=delivery_id,
        )


class _Editions(Protocol):
    """The one method `Composer` needs of an EditionCache."""

    def for_recipient(self, recipient: Recipient | None = None) -> Edition: ...
