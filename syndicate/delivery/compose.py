"""One EmailMessage per recipient from an Edition: placeholders filled, headers set, tokens signed.

This is the only per-recipient work in the pipeline, so it stays cheap: string substitution and
header assembly, no template rendering and no CSS work.
"""

from __future__ import annotations

import binascii
import html
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.charset import Charset
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from syndicate import tokens
from syndicate.headers import one_line
from syndicate.models import Attachment, Channel, Edition, Recipient
from syndicate.render import placeholders as ph

_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in ph.ALL))
_SPLIT = re.compile("(" + "|".join(re.escape(p) for p in ph.ALL) + ")")
_SMTP_POLICY = policy.SMTP
_UTF8 = Charset("utf-8")


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


def shared_reply_address(sender: Sender, send_id: int) -> str:
    """A reply address naming the send but no recipient (recipient 0), for transports that
    cannot set Reply-To per recipient: the reply's From then identifies the reader."""
    return tokens.reply_address(sender.reply_address, tokens.make(sender.key, "reply", send_id, 0))


def api_headers(
    edition: Edition, values: dict[str, str], sender: Sender, mid: str
) -> dict[str, str]:
    """The headers `compose` sets, other than From/To/Subject/Reply-To/Date and MIME ones, for
    transports that build the message themselves (SendGrid's API)."""
    headers = {"Message-ID": mid, "List-Id": list_id(edition.channel, sender)}
    if offers_unsubscribe(edition.channel):
        headers["List-Unsubscribe"] = (
            f"<{values[ph.UNSUBSCRIBE_URL]}>, <{values[ph.UNSUBSCRIBE_MAILTO]}>"
        )
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    headers["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    if edition.channel is Channel.NEWSLETTER:
        headers["Precedence"] = "bulk"
    return headers


def fill(template: str, values: dict[str, str], *, escape: bool) -> str:
    if escape:
        return _PLACEHOLDER.sub(lambda m: html.escape(values[m.group(0)], quote=True), template)
    return _PLACEHOLDER.sub(lambda m: values[m.group(0)], template)


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


def _attach(msg: EmailMessage, attachment: Attachment) -> None:
    """A text attachment (the draft's .txt and .html) stays UTF-8 text, quoted-printable, with
    its charset; anything else is base64 bytes."""
    maintype, _, rest = attachment.content_type.partition("/")
    subtype = rest.split(";", 1)[0].strip()
    if maintype == "text":
        try:
            text = attachment.data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            msg.add_attachment(
                text,
                subtype=subtype,
                charset="utf-8",
                cte="quoted-printable",
                filename=attachment.filename,
            )
            return
    msg.add_attachment(
        attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
    )


def compose(
    edition: Edition, recipient: Recipient, send_id: int, sender: Sender, date: datetime
) -> EmailMessage:
    values = recipient_values(recipient, send_id, sender)
    msg = EmailMessage()
    msg["From"] = Address(one_line(sender.name), addr_spec=sender.from_address)
    msg["To"] = Address(one_line(recipient.name), addr_spec=recipient.email)
    msg["Subject"] = one_line(edition.subject)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id(sender, send_id, recipient.id)
    msg["Reply-To"] = Address(one_line(sender.name), addr_spec=values[ph.REPLY_ADDRESS])
    msg["List-Id"] = list_id(edition.channel, sender)
    if offers_unsubscribe(edition.channel):
        msg["List-Unsubscribe"] = (
            f"<{values[ph.UNSUBSCRIBE_URL]}>, <{values[ph.UNSUBSCRIBE_MAILTO]}>"
        )
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if edition.channel is Channel.NEWSLETTER:
        msg["Precedence"] = "bulk"
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    msg.set_content(fill(edition.text, values, escape=False))
    msg.add_alternative(fill(edition.html, values, escape=True), subtype="html")
    for attachment in edition.attachments:
        _attach(msg, attachment)
    return msg


# --- the fast path: MIME encoded once per edition, per recipient only substitution -------------

_CRLF = b"\r\n"


def _header_lines(msg: EmailMessage) -> bytes:
    """The header block `email` would write for `msg`, folded and CRLF-terminated."""
    head, _, _ = msg.as_bytes(policy=_SMTP_POLICY).partition(b"\r\n\r\n")
    return head + _CRLF


def _fold_address(field: str, name: str, addr: str) -> bytes:
    """`Field: Name <addr>`: quoted when needed, RFC 2047 for non-ASCII names."""
    name = one_line(name)
    if name.isascii():
        return f"{field}: {formataddr((name, addr))}\r\n".encode("ascii")
    return f"{field}: {_encoded_words(name)} <{addr}>\r\n".encode("ascii")


def _encoded_words(name: str, limit: int = 70) -> str:
    """RFC 2047 encoded-words of at most `limit` characters, split only where the name has a
    space (carried inside the next word), so even parsers that keep folding whitespace between
    encoded-words (Python's `email` does) never split a word of the name."""
    chunks: list[str] = []
    chunk = ""
    for piece in name.split(" "):
        candidate = f"{chunk} {piece}" if chunk else piece
        if chunk and len(_UTF8.header_encode(candidate)) > limit:
            chunks.append(chunk)
            chunk = " " + piece
        else:
            chunk = candidate
    chunks.append(chunk)
    return "\r\n ".join(_encoded_word(c, limit) for c in chunks)


def _encoded_word(text: str, limit: int) -> str:
    encoded = _UTF8.header_encode(text)
    if len(encoded) > limit:  # one very long word: let `email` split it inside the word
        encoded = Header(text, "utf-8").encode(linesep="\r\n", maxlinelen=limit)
    return encoded


def _qp(text: str) -> bytes:
    """Quoted-printable of UTF-8 text with CRLF line ends (binascii is C: cheap per recipient)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    return encoded.replace(b"\n", _CRLF)


def _ending_in_newline(text: str) -> str:
    """As `EmailMessage.set_content` does: a text part ends with a line break."""
    return text if text.endswith("\n") else text + "\n"


_SOFT_BREAK = b"=\r\n"


@dataclass(frozen=True)
class EncodedPart:
    """A text part quoted-printable encoded once, cut at its placeholders.

    Quoted-printable allows a soft line break (`=` CRLF) anywhere, so each static span is
    encoded on its own and a recipient's value, encoded alone, is spliced in between soft
    breaks: the decoded text is exactly the filled-in template, every line stays short, and per
    recipient only the few short values are encoded.
    """

    spans: tuple[bytes, ...]  # len(keys) + 1 encoded static spans
    keys: tuple[str, ...]  # the placeholder between span i and span i + 1
    escape: bool

    @classmethod
    def build(cls, template: str, *, escape: bool) -> EncodedPart:
        pieces = _SPLIT.split(template)
        return cls(tuple(_qp(p) for p in pieces[::2]), tuple(pieces[1::2]), escape)

    def fill(self, values: dict[str, str]) -> list[bytes]:
        """The part's bytes for one recipient, as pieces to join once with the rest."""
        encoded = {
            key: _qp_value(html.escape(values[key], quote=True) if self.escape else values[key])
            for key in self.unique_keys
        }
        out = [self.spans[0]]
        for key, span in zip(self.keys, self.spans[1:], strict=True):
            out += (_SOFT_BREAK, encoded[key], _SOFT_BREAK, span)
        return out

    @property
    def unique_keys(self) -> frozenset[str]:
        return frozenset(self.keys)


_QP_SAFE = re.compile(r"[!-<>-~]+(?: [!-<>-~]+)*")  # printable ASCII but '=', no edge spaces


def _qp_value(value: str) -> bytes:
    """A short value's quoted-printable form; most values (addresses, URLs, ASCII names) are
    already valid quoted-printable and are used as they are."""
    if len(value) < 70 and _QP_SAFE.fullmatch(value):
        return value.encode("ascii")
    return _qp(value)


@dataclass(frozen=True)
class MessageTemplate:
    """One edition, MIME-encoded once: constant headers and attachments as bytes, text and HTML
    as strings with placeholders (filled and quoted-printable encoded per recipient)."""

    edition: Edition
    fixed_headers: bytes
    date_header: bytes
    text: EncodedPart
    html: EncodedPart
    boundary: str
    attachments: bytes  # already base64-encoded MIME parts, each preceded by the outer boundary
    mixed_boundary: str

    @classmethod
    def build(cls, edition: Edition, sender: Sender, date: datetime) -> MessageTemplate:
        fixed = EmailMessage()
        fixed["From"] = Address(one_line(sender.name), addr_spec=sender.from_address)
        fixed["Subject"] = one_line(edition.subject)
        fixed["List-Id"] = list_id(edition.channel, sender)
        if offers_unsubscribe(edition.channel):
            fixed["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        if edition.channel is Channel.NEWSLETTER:
            fixed["Precedence"] = "bulk"
        fixed["X-Auto-Response-Suppress"] = "OOF, AutoReply"
        fixed["MIME-Version"] = "1.0"
        dated = EmailMessage()
        dated["Date"] = format_datetime(date)
        token = secrets.token_hex(12)
        attachments = b""
        for attachment in edition.attachments:
            holder = EmailMessage()
            _attach(holder, attachment)
            (part,) = holder.iter_attachments()
            del part["MIME-Version"]
            attachments += b"--=_m" + token.encode() + _CRLF + part.as_bytes(policy=_SMTP_POLICY)
            attachments += _CRLF
        return cls(
            edition=edition,
            fixed_headers=_header_lines(fixed),
            date_header=_header_lines(dated),
            text=EncodedPart.build(_ending_in_newline(edition.text), escape=False),
            html=EncodedPart.build(_ending_in_newline(edition.html), escape=True),
            boundary=f"=_a{token}",
            attachments=attachments,
            mixed_boundary=f"=_m{token}",
        )


def compose_bytes(
    template: MessageTemplate,
    recipient: Recipient,
    send_id: int,
    sender: Sender,
    mid: str | None = None,
) -> bytes:
    """The same message as `compose`, as SMTP-ready bytes, without building an EmailMessage."""
    values = recipient_values(recipient, send_id, sender)
    text = template.text.fill(values)
    html = template.html.fill(values)
    mid = mid or message_id(sender, send_id, recipient.id)
    alt = template.boundary.encode()
    parts = [
        _fold_address("To", recipient.name, recipient.email),
        template.fixed_headers,
        template.date_header,
        f"Message-ID: {mid}\r\n".encode(),
        _fold_address("Reply-To", sender.name, values[ph.REPLY_ADDRESS]),
    ]
    if offers_unsubscribe(template.edition.channel):
        unsubscribe = f"<{values[ph.UNSUBSCRIBE_URL]}>,\r\n <{values[ph.UNSUBSCRIBE_MAILTO]}>"
        parts.append(f"List-Unsubscribe: {unsubscribe}\r\n".encode())
    alternative = [
        b'Content-Type: multipart/alternative; boundary="' + alt + b'"\r\n\r\n',
        b"--" + alt + b'\r\nContent-Type: text/plain; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
        *text,
        b"\r\n--" + alt + b'\r\nContent-Type: text/html; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
        *html,
        b"\r\n--" + alt + b"--\r\n",
    ]
    if not template.attachments:
        return b"".join(parts + alternative)
    mixed = template.mixed_boundary.encode()
    return b"".join(
        [
            *parts,
            b'Content-Type: multipart/mixed; boundary="' + mixed + b'"\r\n\r\n',
            b"--" + mixed + b"\r\n",
            *alternative,
            b"\r\n",
            template.attachments,
            b"--" + mixed + b"--\r\n",
        ]
    )
