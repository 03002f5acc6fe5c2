"""Step 5, unsubscribe request: a reply whose own words are only "unsubscribe" (or "stop",
"remove me", and French, German and Spanish equivalents) unsubscribes that recipient.

An unsubscribe token (the mailto: in List-Unsubscribe) is a request whatever the words.
"""

from __future__ import annotations

import re
import unicodedata

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
