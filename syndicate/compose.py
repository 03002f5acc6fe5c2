"""One EmailMessage per recipient from an Edition: placeholders filled, headers set, tokens signed.

This is the only per-recipient work in the pipeline, so it stays cheap: string substitution and
header assembly, no template rendering and no CSS work.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from syndicate import tokens
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

    @property
    def domain(self) -> str:
        return self.reply_address.rsplit("@", 1)[1]


def message_id(send_id: int, recipient_id: int, domain: str) -> str:
    """Stable per (send, recipient): a retried message keeps its Message-ID, and replies'
    In-Reply-To leads back to the send and the recipient."""
    return f"<syndicate.s{send_id}.r{recipient_id}@{domain}>"


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


def fill(template: str, values: dict[str, str], *, escape: bool) -> str:
    if escape:
        return _PLACEHOLDER.sub(lambda m: html.escape(values[m.group(0)], quote=True), template)
    return _PLACEHOLDER.sub(lambda m: values[m.group(0)], template)


def one_line(text: str) -> str:
    """Header-safe: CR, LF and other control characters from a feed never reach a header."""
    return " ".join(text.split())


def compose(
    edition: Edition, recipient: Recipient, send_id: int, sender: Sender, date: datetime
) -> EmailMessage:
    values = recipient_values(recipient, send_id, sender)
    msg = EmailMessage()
    msg["From"] = Address(one_line(sender.name), addr_spec=sender.from_address)
    msg["To"] = Address(one_line(recipient.name), addr_spec=recipient.email)
    msg["Subject"] = one_line(edition.subject)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id(send_id, recipient.id, sender.domain)
    msg["Reply-To"] = Address(one_line(sender.name), addr_spec=values[ph.REPLY_ADDRESS])
    msg["List-Id"] = f"{one_line(sender.list_name)} <{sender.list_id}>"
    msg["List-Unsubscribe"] = f"<{values[ph.UNSUBSCRIBE_URL]}>, <{values[ph.UNSUBSCRIBE_MAILTO]}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if edition.channel is Channel.NEWSLETTER:
        msg["Precedence"] = "bulk"
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    msg.set_content(fill(edition.text, values, escape=False))
    msg.add_alternative(fill(edition.html, values, escape=True), subtype="html")
    for attachment in edition.attachments:
        maintype, _, rest = attachment.content_type.partition("/")
        subtype = rest.split(";", 1)[0].strip()
        msg.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return msg
