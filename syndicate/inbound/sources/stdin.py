"""Entrance for an MTA pipe or alias: one message on stdin, the exit status tells the MTA.

sysexits: 0 stored (or recognised as already stored, or refused and recorded: too large,
malformed), 75 EX_TEMPFAIL on a transient problem so the MTA keeps the message and retries,
65 EX_DATAERR only when the input is not an email at all (empty, binary: nothing is recorded).
The MTA then returns what the command printed to the sender, so that is one plain sentence
written for them.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from syndicate.inbound.context import Outcome
    from syndicate.runtime import Runtime

log = logging.getLogger(__name__)

EX_OK = 0
EX_DATAERR = 65
EX_TEMPFAIL = 75

# A header field name (RFC 5322: printable ASCII except ':'), then ':'.
_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")
# The mbox envelope line an MTA may put first (Postfix's pipe with flags=F).
_ENVELOPE_LINE = re.compile(rb"From [^\r\n]*\r?\n")

# What the sender reads in the MTA's bounce (exit 65): one plain sentence, no setting names.
NOT_AN_EMAIL = "Your message was not delivered: it arrived empty or was not an email message."


def read_bounded(stream: BinaryIO, limit: int) -> tuple[bytes, int]:
    """The first limit + 1 bytes of the stream (enough to know it is too large) and how many
    it had: the rest is read and dropped, so a huge message costs no memory."""
    kept = bytearray()
    size = 0
    while chunk := stream.read(1 << 16):
        size += len(chunk)
        if len(kept) <= limit:
            kept += chunk[: limit + 1 - len(kept)]
    return bytes(kept), size


def describe(outcome: Outcome) -> str:
    """The one line the pipe prints (and the LMTP listener answers) for a filed message."""
    again = " (already recorded)" if outcome.duplicate else ""
    return f"reply {outcome.reply_id}: {outcome.kind.value}, {outcome.state.value}{again}"


def not_a_message(raw: bytes) -> str:
    """Why these bytes are not an email message ("" when they are): empty, or binary data."""
    if not raw.strip():
        return "empty input"
    envelope = _ENVELOPE_LINE.match(raw)
    message = raw[envelope.end() :] if envelope else raw
    if not _HEADER_LINE.match(message):
        return "does not start with a header line"
    if b"\0" in re.split(rb"\r?\n\r?\n", message, maxsplit=1)[0]:
        return "binary data (NUL bytes) in the header"
    return ""


def receive_bytes(
    runtime: Runtime,
    raw: bytes,
    envelope_recipients: tuple[str, ...] = (),
    size: int = 0,
) -> tuple[int, Outcome]:
    """File one message; returns the exit status for the MTA and the outcome. `size`: how many
    bytes it had, when only the first max_message_bytes + 1 were kept (read_bounded)."""
    # Imported here: input that is not an email (exit 65) is turned away before the pipeline,
    # the database and SQLAlchemy are loaded.
    from syndicate.inbound.pipeline import process

    outcome = process(
        runtime, raw, source="stdin", envelope_recipients=envelope_recipients, size=size
    )
    # Whatever was recorded is never bounced: the MTA's bounce goes to the envelope sender,
    # which anyone can forge (a too-large message's writer, if one of ours, is told by mail at
    # the address on record). Exit 65 is only for input that is not an email at all.
    return EX_OK, outcome
