"""Step autoreply: out-of-office and other machine answers are recorded, never forwarded.

RFC 3834 `Auto-Submitted` (anything but "no"), `X-Autoreply`, `X-Autorespond`,
`Precedence: auto_reply|bulk|junk|list`, a null sender, and the subjects mail clients use in
several languages.
"""

from __future__ import annotations

import re

from syndicate.inbound.context import MessageContext
from syndicate.inbound.steps.parse import header
from syndicate.models import InboundMessage, ReplyKind

_SUBJECTS = re.compile(
    r"^\s*("
    r"out of (the )?office|automatic reply|auto(matic)?[- ]?(reply|response)|autoreply"
    r"|away from (my|the) (desk|office)|on vacation|on holiday|on leave"
    r"|abwesenheit(snotiz|smeldung)?|automatische antwort|nicht im b[üu]ro|außer haus"
    r"|r[ée]ponse automatique|absence du bureau|absent\b|message d.absence"
    r"|respuesta autom[áa]tica|fuera de la oficina|ausente"
    r"|risposta automatica|fuori ufficio|automatisch antwoord|afwezig"
    r")",
    re.IGNORECASE,
)
_PRECEDENCE = {"auto_reply", "bulk", "junk"}


def process(message: MessageContext) -> None:
    automatic = reason(message.inbound)
    if automatic:
        message.decide(ReplyKind.AUTO_REPLY, automatic)


def reason(inbound: InboundMessage) -> str:
    """Why the message is an automatic reply, or "" when a person wrote it."""
    message = inbound.message
    auto_submitted = header(message, "Auto-Submitted").lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if header(message, name):
            return f"{name} header"
    precedence = header(message, "Precedence").lower()
    if precedence in _PRECEDENCE:
        return f"Precedence: {precedence}"
    if _null_sender(inbound):
        return "null sender (Return-Path: <>)"
    subject = re.sub(r"^\s*((re|aw|wg|tr|fw|fwd)\s*:\s*)+", "", inbound.subject, flags=re.I)
    if _SUBJECTS.match(subject) or _SUBJECTS.match(inbound.subject):
        return f"subject {inbound.subject!r}"
    return ""


def _null_sender(inbound: InboundMessage) -> bool:
    return_path = header(inbound.message, "Return-Path")
    return return_path.replace(" ", "") == "<>"
