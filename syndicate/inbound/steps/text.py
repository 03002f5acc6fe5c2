"""Step text, the reply's own words: the body as text, quoted message and signature removed.

mail-parser-reply (several languages) finds the reply above an attribution line and removes most
signatures, but it knows no Russian or Portuguese, misses attributions wrapped over two lines,
Outlook's header blocks in most languages, webmail quoting without '>' marks and bottom-posted
replies (research.md). So the quoted parts are cut here first, by these rules:

- HTML: the quoting elements of Gmail, Yahoo, GMX/web.de, Apple/iOS Mail, Thunderbird, Roundcube
  and Mail.ru (<blockquote>, gmail_quote, yahoo_quoted, name="quote", moz-cite-prefix) are
  removed, and everything from Outlook's divRplyFwdMsg or Zimbra's <hr id="zwchr"> on;
- text: every line quoted with '>', and everything from the first attribution line on (a line,
  or two joined lines, saying who wrote what is quoted: in twelve languages, or any line with a
  time and an address that ends in ':'), from "-----Original Message-----" and its translations,
  from Outlook's underscore line, or from a From:/Sent: header block in either order;
- a signature ("-- ", "Sent from my …" and its translations) ends the words.

Whatever is cut, the reader's words are never lost: when the rules leave nothing, the text with
only its '>' lines removed is kept, and failing that the whole body.
"""

from __future__ import annotations

import logging
import re
from email.message import EmailMessage

from mailparser_reply import EmailReplyParser

from syndicate.inbound.context import MessageContext

log = logging.getLogger(__name__)

LANGUAGES = ["en", "fr", "de", "es", "it", "nl", "pl", "sv", "da", "cs"]

# The verbs of attribution lines ("On … Jane <…> wrote:"), one per language and client family.
_ATTRIBUTION_LINE = re.compile(
    r"^\s*(?:>\s*)*(?:"
    r"on\b.{0,250}\bwrote\s*:"  # On Tue, 24 Nov 2026 at 09:12, Jane <…> wrote:
    r"|le\b.{0,250}\ba\s+[ée]crit\s*:"  # Le mar. 24 nov. 2026 à 09:12, Jane a écrit :
    r"|.{0,250}\bschrieb\b.{0,250}:"  # Am 24.11.26 um 09:12 schrieb Jane: / Jane schrieb:
    r"|el\b.{0,250}\bescribi[óo]\s*:"  # El mar, 24 nov 2026 a las 9:12, Jane escribió:
    r"|il\b.{0,250}\bha\s+scritto\s*:"  # Il gio 26 nov 2026, 19:00 Jane <…> ha scritto:
    r"|em\b.{0,250}\bescreveu\s*:"  # Em 26 de nov. de 2026, à(s) 19:00, Jane escreveu:
    r"|op\b.{0,250}\bschreef\b.{0,250}:"  # Op 26 nov. 2026 om 19:00 schreef Jane <…>:
    r"|.{0,250}\bнаписал[аи]?\s*:"  # 27 нояб. 2026 г., в 13:00, пользователь Jane <…> написал:
    r"|.{0,250}\bnapisał[a]?\s*:"  # W dniu 26.11.2026 o 19:00, Jane pisze / napisał:
    r"|.{0,250}\b(?:skrev|kirjoitti)\b.{0,250}:"  # Den 26 nov. 2026 kl. 19:00 skrev Jane:
    r"|.{0,250}\d{1,2}:\d{2}.{0,250}<[^<>\s]+@[^<>\s]+>\s*:"  # 27.11.2026, 13:00, Jane <…>:
    r")\s*$",
    re.IGNORECASE,
)
# Lines that start a quoted message by themselves.
_SEPARATOR_LINE = re.compile(
    r"^\s*(?:>\s*)*(?:"
    r"-{2,}\s*(?:original message|ursprüngliche nachricht|message d.origine|mensaje original"
    r"|messaggio originale|mensagem original|oorspronkelijk bericht|исходное сообщение"
    r"|forwarded message|message transféré|weitergeleitete nachricht)\s*-{2,}"
    r"|_{20,}"  # Outlook's line above its From:/Sent: block
    r"|message du \d.{0,60}"  # Orange: "Message du 26/11/26 19:00" above "De : …"
    r")\s*$",
    re.IGNORECASE,
)
# Two consecutive header lines of a quoted message (Outlook, GMX, Zimbra, Samsung), any order.
_HEADER_NAMES = (
    r"from|de|von|van|от|da|od|fra|från"
    r"|sent|envoy[ée]|gesendet|enviado|enviados|date|datum|verzonden|отправлено|inviato|data"
)
_HEADER_BLOCK = re.compile(
    rf"^[ \t]*(?:>[ \t]*)*(?:\*\*)?(?:{_HEADER_NAMES})(?:\*\*)?[ \t]*:[^\n]*\n"
    rf"[ \t]*(?:>[ \t]*)*(?:\*\*)?(?:{_HEADER_NAMES})(?:\*\*)?[ \t]*:",
    re.IGNORECASE | re.MULTILINE,
)
_SIGNATURE = re.compile(
    r"^(?:-- ?|—|sent from my [^\n]+|sent from (?:outlook|yahoo mail)[^\n]*"
    r"|envoy[ée] (?:de|depuis) mon [^\n]+|von meinem [^\n]+ gesendet|gesendet von meinem [^\n]+"
    r"|enviado desde mi [^\n]+|enviado do meu [^\n]+|inviato da[l]? [^\n]+"
    r"|verzonden (?:vanaf|met) [^\n]+|отправлено с [^\n]+|get outlook for [^\n]+)$",
    re.IGNORECASE | re.MULTILINE,
)
# HTML elements that hold the quoted message (dropped), and markers after which all is quoted.
_HTML_QUOTES = (
    "//blockquote"
    " | //div[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote ')]"
    " | //div[contains(@class, 'yahoo_quoted')]"
    " | //div[@name='quote']"
    " | //div[contains(@class, 'moz-cite-prefix')]"
)
_HTML_QUOTE_STARTS = "//*[@id='divRplyFwdMsg'] | //hr[@id='zwchr']"


def process(message: MessageContext) -> None:
    message.words = own_words(message.inbound.message)


def body_text(message: EmailMessage, *, keep_quotes: bool = False) -> str:
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
        source = html if keep_quotes else _without_html_quotes(html)
        # Imported here: the syndicate.render package loads premailer and python-docx.
        from syndicate.render.text import html_to_plain

        return html_to_plain(source, links=True, emphasis=False)
    return ""


def own_words(message: EmailMessage) -> str:
    words = strip_quotes(body_text(message))
    if not words:
        # An HTML reply written entirely inside what looked like a quote: keep it all.
        words = _tidy(body_text(message, keep_quotes=True))
    return words


def strip_quotes(text: str) -> str:
    """The newest part of a reply: quoted text, attribution lines and signatures removed; never
    empty when the text has words outside its quoted lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    unquoted = _without_quoted_lines(text)
    words = _cut_signature(_own_part(unquoted))
    return _tidy(words) or _tidy(unquoted) or _tidy(text)


def _own_part(text: str) -> str:
    """The reader's part: above the first attribution, or below it when they wrote there."""
    start, end = _quote_start(text)
    above = text[:start]
    if above.strip() or start == len(text):
        return _reply_parser_cut(above)
    # Bottom-posted: the attribution comes first; the reader wrote below the quoted lines.
    return _reply_parser_cut(text[end:])


def _reply_parser_cut(text: str) -> str:
    parsed = EmailReplyParser(languages=LANGUAGES).read(text)
    if parsed.replies:
        first = parsed.replies[0]
        cut = first.body or first.content
        if cut and cut.strip():
            return cut
    return text


def _quote_start(text: str) -> tuple[int, int]:
    """Where the quoted message starts (len(text) when nothing is quoted), and where the lines
    introducing it end."""
    starts = [(len(text), len(text))]
    block = _HEADER_BLOCK.search(text)
    if block:
        starts.append((block.start(), block.end()))
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if _SEPARATOR_LINE.match(line):
            starts.append((offsets[i], offsets[i + 1]))
            break
        for span in (1, 2, 3):  # clients wrap a long attribution line
            part = lines[i : i + span]
            if len(part) < span or not all(line.strip() for line in part):
                break
            joined = " ".join(part)
            if (
                span > 1
                and re.search(r"[.!?…\"»)]\s*$", part[0])
                and _ATTRIBUTION_LINE.match(" ".join(part[1:]))
            ):
                break  # a finished sentence, then an attribution on its own: the reader's line
            if _ATTRIBUTION_LINE.match(joined) and _looks_like_attribution(joined, lines, i + span):
                starts.append((offsets[i], min(offsets[i + span], len(text))))
                break
        if len(starts) > 1 and starts[-1][0] == offsets[i]:
            break
    return min(starts)


def _looks_like_attribution(joined: str, lines: list[str], after: int) -> bool:
    """A date, time or address in it, or quoted lines right after: not the reader's sentence."""
    if re.search(r"\d|@", joined):
        return True
    following = next((line for line in lines[after:] if line.strip()), "")
    return following.lstrip().startswith(">")


def _without_quoted_lines(text: str) -> str:
    return "\n".join(line for line in text.split("\n") if not line.lstrip().startswith(">"))


def _cut_signature(text: str) -> str:
    match = _SIGNATURE.search(text)
    if match and text[: match.start()].strip():
        return text[: match.start()]
    return text


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _without_html_quotes(html: str) -> str:
    """The HTML with its quoted message removed (see the module's docstring)."""
    import lxml.etree
    import lxml.html

    try:
        root = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError) as exc:
        log.debug("HTML part not parsed (%s); its quotes are left to the text rules", exc)
        return html
    for start in root.xpath(_HTML_QUOTE_STARTS)[:1]:
        element = start
        while element is not None and element is not root:
            for sibling in list(element.itersiblings()):
                sibling.getparent().remove(sibling)
            element = element.getparent()
        start.drop_tree()
    for quote in root.xpath(_HTML_QUOTES):
        if quote.getparent() is not None:
            quote.drop_tree()
    return lxml.html.tostring(root, encoding="unicode")


# What mail programs mean by these labels: Windows-1252 (the WHATWG Encoding Standard maps them
# so, and Outlook writes 0x85 "…" and 0x93/0x94 curly quotes under "iso-8859-1"); Python would
# read those bytes as C1 controls.
_WINDOWS_1252_LABELS = {"iso-8859-1", "latin1", "latin-1", "us-ascii", "ascii"}


def _decoded(part: EmailMessage) -> str:
    if part.get_content_charset("").lower() in _WINDOWS_1252_LABELS:
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            return payload.decode("cp1252", "replace")
    try:
        content = part.get_content()
    except Exception:  # unknown charset or broken transfer encoding: best effort
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    return content if isinstance(content, str) else content.decode("utf-8", "replace")
