"""Step parse: bytes as received → InboundMessage; broken MIME still yields what it can.

A message larger than inbound.max_message_bytes is not parsed whole: its headers are, so it can
be recorded (as refused, by `verify`) and its writer told.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

from syndicate.inbound.context import MessageContext
from syndicate.models import InboundMessage

_MSGID = re.compile(r"<[^<>\s]+>")
# Surrogates other than the parser's escapes of raw bytes (U+DC80–U+DCFF).
_LONE_SURROGATE = re.compile("[\ud800-\udc7f\udd00-\udfff]")


def header(message: EmailMessage, name: str) -> str:
    """A header as text, never raising: a malformed or 8-bit header gives its best reading."""
    try:
        value = message.get(name)
    except Exception:  # the email package raises assorted errors on broken headers
        value = None
        for key, raw in message.raw_items():
            if key.lower() == name.lower():
                value = raw
                break
    if value is None:
        return ""
    return " ".join(clean(str(value)).split())


def clean(text: str) -> str:
    """Text safe to store: raw 8-bit bytes in a header (kept by the parser as surrogates) are
    read as UTF-8 where they are UTF-8 and as Windows-1252 where they are not; any other lone
    surrogate (a UTF-7 or UTF-16 body can decode to one) becomes "?"."""
    if not any("\ud800" <= c <= "\udfff" for c in text):
        return text
    text = _LONE_SURROGATE.sub("?", text)
    return _escaped_bytes(text).encode("utf-8", "replace").decode("utf-8")


def _escaped_bytes(text: str) -> str:
    if not any("\udc80" <= c <= "\udcff" for c in text):
        return text
    data = text.encode("utf-8", "surrogateescape")
    out, i = [], 0
    while i < len(data):
        try:
            out.append(data[i:].decode("utf-8"))
            break
        except UnicodeDecodeError as exc:
            out.append(data[i : i + exc.start].decode("utf-8"))
            bad = data[i + exc.start : i + exc.start + 1]
            out.append(bad.decode("cp1252", "replace"))
            i += exc.start + 1
    return "".join(out)


def headers(message: EmailMessage, name: str) -> list[str]:
    """Every occurrence of a header (Received-style headers may repeat), as text."""
    found = []
    for key, raw in message.raw_items():
        if key.lower() == name.lower():
            found.append(" ".join(str(raw).split()))
    return found


def addresses(message: EmailMessage, *names: str) -> list[str]:
    """Plain addresses from address headers, lower-case, in order, without duplicates."""
    values = [value for name in names for value in headers(message, name)]
    found = [addr.strip().lower() for _, addr in getaddresses(values) if "@" in addr]
    return list(dict.fromkeys(found))


def message_ids(value: str) -> tuple[str, ...]:
    return tuple(_MSGID.findall(value))


# Deeper MIME than any mail client writes (a forward of a forward of … stays far below): the
# email package and the bounce detectors recurse once per level, so deeper input is refused.
MAX_DEPTH = 50


# The email package's header parser is far from linear on some input (280 KB of encoded words
# in one Subject peaked at 2.86 GB RSS, measured), so headers past these sizes never reach it:
# the message is filed as malformed with each header cut to TRUNCATED_HEADER_BYTES.
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADER_BLOCK_BYTES = 256 * 1024
TRUNCATED_HEADER_BYTES = 998
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_FIELD_START = re.compile(rb"\r?\n(?![ \t])")
_CONTENT_TYPE_FIELD = re.compile(rb"^content-type:[^\n]*(?:\n[ \t][^\n]*)*", re.I | re.M)


def process(message: MessageContext) -> None:
    raw, limit = message.raw, message.settings.inbound.max_message_bytes
    size = max(message.size, len(raw))
    if size > limit:
        message.too_large = (
            f"message of {size:,} bytes is larger than inbound.max_message_bytes "
            f"({limit:,}); only its headers were kept"
        )
        raw = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0][:65536] + b"\n\n"
    message.parsed = parse(
        raw, source=message.source, envelope_recipients=message.envelope_recipients
    )


def parse(raw: bytes, *, source: str, envelope_recipients: tuple[str, ...] = ()) -> InboundMessage:
    """Parse without raising; the bytes are kept untouched for the record. A structure that
    cannot be read (headers too large, nested too deep, or the parser fails) gives the headers
    alone, with `malformed` saying why; headers that cannot be read at all give none."""
    try:
        return _parse(raw, source, envelope_recipients)
    except Exception as exc:  # e.g. RecursionError deep inside the address parser
        message = _headers_only(raw[:MAX_HEADER_BLOCK_BYTES])
        msgid = message_ids(_quietly(header, message, "Message-ID"))
        return InboundMessage(
            raw=raw,
            message=message,
            source=source,
            message_id=msgid[0] if msgid else "",
            sender="",
            sender_name="",
            subject=_quietly(header, message, "Subject"),
            in_reply_to="",
            references=(),
            envelope_recipients=_envelope(envelope_recipients),
            defects=(),
            malformed=f"unreadable headers ({type(exc).__name__}); kept whole",
        )


def _quietly(read: Callable[[EmailMessage, str], str], message: EmailMessage, name: str) -> str:
    try:
        return read(message, name)
    except Exception:
        return ""


def _parse(raw: bytes, source: str, envelope_recipients: tuple[str, ...]) -> InboundMessage:
    malformed = oversized_headers(raw)
    if malformed:
        message = _truncated_headers(raw)
    else:
        try:
            message = BytesParser(policy=policy.default).parsebytes(raw)
            depth = nesting_depth(message)
            if depth > MAX_DEPTH:
                malformed = f"MIME nested more than {MAX_DEPTH} levels deep"
            else:
                malformed = oversized_part_header(message)
        except RecursionError:
            malformed = f"MIME nested more than {MAX_DEPTH} levels deep"
        except Exception as exc:  # the email package's own bugs on hostile input
            malformed = f"unreadable MIME structure ({type(exc).__name__}: {exc})"
        if malformed:
            message = _headers_only(raw)
    assert isinstance(message, EmailMessage)
    name, sender = _sender(message)
    msgid = message_ids(header(message, "Message-ID"))
    in_reply_to = message_ids(header(message, "In-Reply-To"))
    references = message_ids(header(message, "References"))
    defects = [type(d).__name__ for d in message.defects]
    if not malformed:
        for part in message.walk():
            defects.extend(type(d).__name__ for d in part.defects)
    return InboundMessage(
        raw=raw,
        message=message,
        source=source,
        message_id=msgid[0] if msgid else "",
        sender=sender,
        sender_name=name,
        subject=header(message, "Subject"),
        in_reply_to=in_reply_to[0] if in_reply_to else "",
        references=references,
        envelope_recipients=_envelope(envelope_recipients),
        defects=tuple(dict.fromkeys(defects)),
        malformed=malformed,
    )


def _envelope(recipients: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(clean(a.strip().strip("<>").lower()) for a in recipients)


def _header_block(raw: bytes) -> bytes:
    """The bytes before the first blank line, looking no further than the block's cap."""
    window = raw[: MAX_HEADER_BLOCK_BYTES + 4]
    end = _BLANK_LINE.search(window)
    return window[: end.start()] if end else window


def oversized_headers(raw: bytes) -> str:
    """Why the header block is too large to parse safely ("" when it is not)."""
    head = _header_block(raw)
    if len(head) > MAX_HEADER_BLOCK_BYTES:
        return f"header block larger than {MAX_HEADER_BLOCK_BYTES:,} bytes; headers truncated"
    largest = max((len(field) for field in _FIELD_START.split(head)), default=0)
    if largest > MAX_HEADER_BYTES:
        return f"a header of {largest:,} bytes (more than {MAX_HEADER_BYTES:,}); headers truncated"
    # The parser itself reads every MIME part's Content-Type (to find boundaries), so those are
    # measured before it runs; other part headers are measured after (oversized_part_header).
    for field in _CONTENT_TYPE_FIELD.finditer(raw):
        if len(field.group()) > MAX_HEADER_BYTES:
            return (
                f"a MIME part's Content-Type of {len(field.group()):,} bytes "
                f"(more than {MAX_HEADER_BYTES:,}); headers truncated"
            )
    return ""


def oversized_part_header(message: EmailMessage) -> str:
    """Why a MIME part's header is too large to read safely ("" when none is). The parser keeps
    header values as raw text until one is read, so measuring them here costs nothing."""
    for part in message.walk():
        for _name, value in part.raw_items():
            if len(value) > MAX_HEADER_BYTES:
                return (
                    f"a MIME part header of {len(value):,} characters "
                    f"(more than {MAX_HEADER_BYTES:,}); headers kept, body not read"
                )
    return ""


def _truncated_headers(raw: bytes) -> EmailMessage:
    fields = _FIELD_START.split(_header_block(raw)[:MAX_HEADER_BLOCK_BYTES])
    head = b"\n".join(field[:TRUNCATED_HEADER_BYTES] for field in fields)
    return _headers_only(head)


def nesting_depth(message: EmailMessage) -> int:
    """How deep the MIME tree goes, counted without recursion."""
    deepest = 0
    stack: list[tuple[Message, int]] = [(message, 1)]
    while stack:
        part, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            stack.extend((child, depth + 1) for child in payload if isinstance(child, Message))
    return deepest


def _headers_only(raw: bytes) -> EmailMessage:
    """The header block alone, as a message with an empty body."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0][:65536]
    try:
        message = BytesParser(policy=policy.default).parsebytes(head + b"\n\n", headersonly=True)
        for name in ("Content-Type", "Content-Transfer-Encoding"):
            del message[name]
        return message  # type: ignore[return-value]
    except Exception:
        return EmailMessage()


def _sender(message: EmailMessage) -> tuple[str, str]:
    """(display name, address) of From, falling back to Sender and Return-Path."""
    for name in ("From", "Sender", "Return-Path"):
        value = header(message, name)
        if not value:
            continue
        try:
            parsed = message[name]
            if parsed is not None and getattr(parsed, "addresses", None):
                first: Address = parsed.addresses[0]
                if first.addr_spec and "@" in first.addr_spec:
                    return clean(first.display_name), clean(first.addr_spec).lower()
        except Exception:
            pass
        display, addr = parseaddr(value)  # may raise (RecursionError): parse() falls back
        if "@" in addr:
            return clean(display), clean(addr).lower()
    return "", ""
