"""Step 6, the reply's own words: the body as text, quoted message and signature removed.

mail-parser-reply (several languages) finds the reply above an attribution line and removes most
signatures; it misses some client formats (an attribution line wrapped over two lines by Gmail,
Apple Mail's quoted attribution, bare `>` quoting, Thunderbird's "-- " signature separator), so
those are cut first here. HTML-only replies are turned into text (html2text) before all this.
"""

from __future__ import annotations

import re
from email.message import EmailMessage

from mailparser_reply import EmailReplyParser

from syndicate.render.text import html_to_plain

LANGUAGES = ["en", "fr", "de", "es"]

# Lines that start the quoted message, in the formats of Gmail, Outlook, Apple Mail and
# Thunderbird, in English, French, German and Spanish. Matched against joined lines, so an
# attribution wrapped over two lines is found too.
_ATTRIBUTION = re.compile(
    r"^[ \t]*>?[ \t]*("
    r"on\b[^\n]{0,200}?\bwrote\s*:"  # On Tue, 24 Nov 2026 at 09:12, Jane <…> wrote:
    r"|le\b[^\n]{0,200}?\ba\s+[ée]crit\s*:"  # Le mar. 24 nov. 2026 à 09:12, Jane a écrit :
    r"|am\b[^\n]{0,200}?\bschrieb\b[^\n]{0,200}?:"  # Am 24.11.26 um 09:12 schrieb Jane:
    r"|[^\n]{0,200}\bschrieb\s*:"  # Jane Marlowe schrieb:
    r"|el\b[^\n]{0,200}?\bescribi[óo]\s*:"  # El mar, 24 nov 2026 a las 9:12, Jane escribió:
    r"|-{2,}\s*(original message|ursprüngliche nachricht|message d.origine|mensaje original"
    r"|forwarded message|message transféré|weitergeleitete nachricht)\s*-{2,}"
    r"|_{20,}"  # Outlook's separator line above the From:/Sent: block
    r"|(from|de|von|van)\s*:[^\n]*\n\s*(sent|envoy[ée]|gesendet|enviado|date|datum)\s*:"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
_SIGNATURE = re.compile(
    r"^(-- ?|—|sent from my [^\n]+|envoy[ée] de mon [^\n]+|von meinem [^\n]+ gesendet"
    r"|gesendet von meinem [^\n]+|enviado desde mi [^\n]+|get outlook for [^\n]+)$",
    re.IGNORECASE | re.MULTILINE,
)


def body_text(message: EmailMessage) -> str:
    """The message's text: its text/plain part, else its HTML part as text, else ""."""
    plain = html = None
    for part in message.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        content_type = part.get_content_type()
        if content_type == "text/plain" and plain is None:
            plain = _decoded(part)
        elif content_type == "text/html" and html is None:
            html = _decoded(part)
    if plain and plain.strip():
        return plain
    if html:
        return html_to_plain(_mark_html_quotes(html), links=True, emphasis=False)
    return ""


def own_words(message: EmailMessage) -> str:
    return strip_quotes(body_text(message))


def strip_quotes(text: str) -> str:
    """The newest part of a reply: quoted text, attribution lines and signatures removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    text = _cut_at_attribution(text)
    text = "\n".join(line for line in text.split("\n") if not line.lstrip().startswith(">"))
    parsed = EmailReplyParser(languages=LANGUAGES).read(text)
    if parsed.replies:
        first = parsed.replies[0]
        text = first.body or first.content
    text = _cut_signature(text)
    return _tidy(text)


def _cut_at_attribution(text: str) -> str:
    match = _ATTRIBUTION.search(text)
    if match and text[: match.start()].strip():
        return text[: match.start()]
    return text


def _cut_signature(text: str) -> str:
    match = _SIGNATURE.search(text)
    if match and text[: match.start()].strip():
        return text[: match.start()]
    return text


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _mark_html_quotes(html: str) -> str:
    """Drop the quoted message of an HTML reply before conversion: Gmail's gmail_quote,
    Apple Mail's and Thunderbird's <blockquote type="cite">, Outlook's divRplyFwdMsg."""
    html = re.sub(
        r"<(div|blockquote)[^>]*(gmail_quote|type=\"?cite|divRplyFwdMsg|moz-cite-prefix)[^>]*>.*",
        "",
        html,
        flags=re.IGNORECASE | re.DOTALL,
    )
    return html


def _decoded(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except Exception:  # unknown charset or broken transfer encoding: best effort
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    return content if isinstance(content, str) else content.decode("utf-8", "replace")
