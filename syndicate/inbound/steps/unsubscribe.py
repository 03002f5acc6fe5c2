"""Step unsubscribe: a reply whose own words are only "unsubscribe" (or "stop",
"remove me", and French, German and Spanish equivalents) unsubscribes that recipient, when it
comes from their own address.

An unsubscribe token (the mailto: in List-Unsubscribe) is a request whatever the words and
whoever writes: it is the same secret as the one-click link, which works from anywhere; the
confirmation goes to the address on record. A send-wide reply address names no one, so nothing
said to it unsubscribes anybody (step comment notes the request).
"""

from __future__ import annotations

import logging
import re
import unicodedata

from syndicate import db
from syndicate.inbound import notices
from syndicate.inbound.context import MessageContext, Writer
from syndicate.models import RecipientStatus, ReplyKind

log = logging.getLogger(__name__)

_POLITE = re.compile(
    r"\b(please|pls|thanks?( you)?|thank you|merci( beaucoup)?|s.il (te|vous) pla[iî]t|svp"
    r"|bitte|danke( sch[öo]n)?|por favor|gracias|hi|hello|bonjour|hallo|hola|now)\b",
    re.IGNORECASE,
)
_REQUESTS = {
    "unsubscribe",
    "unsubscribe me",
    "stop",
    "remove",
    "remove me",
    "remove me from this list",
    "remove me from your list",
    "take me off",
    "take me off your list",
    "opt out",
    "cancel",
    "desabonner",
    "se desabonner",
    "desabonnez moi",
    "desabonnement",
    "desinscrire",
    "desinscrivez moi",
    "me desinscrire",
    "me desabonner",
    "arreter",
    "abmelden",
    "abbestellen",
    "austragen",
    "bitte austragen",
    "abmeldung",
    "kundigen",
    "stopp",
    "entfernen",
    "baja",
    "darme de baja",
    "dar de baja",
    "cancelar suscripcion",
    "cancelar",
    "quitar",
    "eliminar",
}


def process(message: MessageContext) -> None:
    writer, identity = message.writer, message.identity
    if writer in (Writer.UNKNOWN, Writer.SHARED):
        return
    if identity.purpose != "unsubscribe" and not (
        writer is Writer.RECIPIENT and is_request(message.words, message.inbound.subject)
    ):
        return
    message.decide(ReplyKind.UNSUBSCRIBE, f"asked to unsubscribe ({identity.via})")
    message.actions.append(unsubscribe)
    if message.settings.inbound.confirm_unsubscribe:
        message.afterwards.append(confirm)


def unsubscribe(message: MessageContext) -> None:
    """In the record's transaction: the recipient is unsubscribed."""
    recipient_id = message.decided.recipient_id
    if recipient_id is None:
        return
    reason = f"asked by email (reply {message.reply_id})"
    changed = db.recipients.mark_recipient(
        message.connection, recipient_id, RecipientStatus.UNSUBSCRIBED, reason, message.at
    )
    message.detail = "unsubscribed" if changed else "already not subscribed"


def confirm(message: MessageContext) -> None:
    """Once committed: the confirmation, to the address on record. Never raises."""
    engine = message.database
    with engine.connect() as conn:
        row = db.replies.get_reply(conn, message.reply_id)
        recipient = (
            db.recipients.get_recipient(conn, row.recipient_id)
            if row and row.recipient_id
            else None
        )
    if row is None or recipient is None:
        return
    try:
        notice = notices.unsubscribe_confirmation(message.runtime, recipient, row, message.at)
        result = notices.deliver(message.runtime, notice)
        detail = f"unsubscribed; confirmation {result.state.value}"
    except Exception as exc:  # the unsubscribe itself is recorded; the notice is a courtesy
        detail = f"unsubscribed; confirmation failed: {exc}"
    with engine.begin() as conn:
        db.replies.update_reply(conn, row.id, detail=detail)


def _normalised(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = _POLITE.sub(" ", text)
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def is_request(own_words: str, subject: str) -> bool:
    """True when the reply's own words (or, with no words, its subject) only ask to leave."""
    words = _normalised(own_words)
    if words:
        return words in _REQUESTS
    subject = re.sub(r"^\s*((re|aw|wg|tr|fw|fwd)\s*:\s*)+", "", subject, flags=re.IGNORECASE)
    return _normalised(subject) in _REQUESTS
