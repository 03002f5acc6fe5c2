"""The column's words, without HTML: blocks of text, quote styles, word counts, release times.

Every output format (the plain-text draft, .docx, .html, NITF) is built from the same list of
`Block`s so they never disagree about what the column says.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

import lxml.html
import smartypants
from lxml.etree import ParserError

BlockKind = Literal[
    "paragraph", "subhead", "quote", "attribution", "item", "photo", "preformatted", "break"
]
# Kinds whose words are part of the column (and so of its word count); photo captions are not.
COUNTED_KINDS = {"paragraph", "subhead", "quote", "attribution", "item", "preformatted"}


@dataclass(frozen=True)
class Block:
    """One paragraph-level piece of the column, as plain text."""

    kind: BlockKind
    text: str
    marker: str = ""  # list items: "•" or "3."
    level: int = 0  # list nesting depth
    caption: str = ""  # photos
    credit: str = ""
    src: str = ""
    alt: str = ""

    @property
    def line(self) -> str:
        """The block as one line of the plain-text draft."""
        if self.kind == "item":
            return "    " * self.level + f"{self.marker} {self.text}"
        if self.kind == "photo":
            return f"PHOTO: {self.text}" + (f" (Credit: {self.credit})" if self.credit else "")
        if self.kind == "break":
            return "* * *"
        return self.text


# --- quotes -----------------------------------------------------------------------------------

_STRAIGHTEN = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "“": '"', "”": '"', "„": '"'})


def curly(text: str) -> str:
    """Typographic quotes and apostrophes (SmartyPants), leaving everything else alone."""
    escaped = html.escape(text, quote=False)
    return html.unescape(smartypants.smartypants(escaped, smartypants.Attr.q | smartypants.Attr.u))


def straight(text: str) -> str:
    return text.translate(_STRAIGHTEN)


def quote_style(text: str, style: str) -> str:
    return curly(text) if style == "curly" else straight(text)


# --- word count -------------------------------------------------------------------------------

# Dashes and ellipses separate words ("word—word" is two words); hyphens join them.
_SEPARATORS = re.compile(r"[\u2012\u2013\u2014\u2015\u2026]|-{2,}|\.{3,}|(?<=\w)/(?=\w{3,})")
_INVISIBLE = re.compile(r"[\u00ad\u200b\u200c\u200d\u2060\ufeff]")


def count_words(text: str) -> int:
    """Words as an editor counts them, in body text.

    Hyphenated words ("dry-stone", "mother-in-law") and numbers ("1,200", "3.5", "$40", "9.15")
    are one word; em and en dashes and ellipses separate words even without spaces; HTML
    entities are decoded first (``&amp;`` is the word "&"); soft hyphens and zero-width
    characters are ignored; punctuation on its own ("—", "-", "*") is not a word.
    """
    plain = unicodedata.normalize("NFC", html.unescape(text))
    plain = _INVISIBLE.sub("", plain)
    plain = _SEPARATORS.sub(" ", plain)
    return sum(1 for token in plain.split() if _is_word(token))


def body_word_count(body_html: str) -> int:
    """The column's word count: the body's text blocks (not captions), as its draft says."""
    return sum(
        count_words(b.text)
        for b in html_to_blocks(body_html, links=False)
        if b.kind in COUNTED_KINDS
    )


def _is_word(token: str) -> bool:
    return token == "&" or any(ch.isalnum() for ch in token)


# --- release times ----------------------------------------------------------------------------

# AP style: these months are abbreviated, the others spelled out.
_AP_MONTHS = {
    1: "Jan.",
    2: "Feb.",
    8: "Aug.",
    9: "Sept.",
    10: "Oct.",
    11: "Nov.",
    12: "Dec.",
}
# North American zones are named without the S/D ("ET"), as newspapers print them.
_NORTH_AMERICAN = {
    "EST": "ET",
    "EDT": "ET",
    "CST": "CT",
    "CDT": "CT",
    "MST": "MT",
    "MDT": "MT",
    "PST": "PT",
    "PDT": "PT",
    "AKST": "AKT",
    "AKDT": "AKT",
    "AST": "AT",
    "ADT": "AT",
    "NST": "NT",
    "NDT": "NT",
}


def release_stamp(moment: datetime, zone: ZoneInfo) -> str:
    """``Saturday, Dec. 5, 2026, 00:01 ET``: the moment in the editor's own time zone."""
    local = moment.astimezone(zone)
    month = _AP_MONTHS.get(local.month, f"{local:%B}")
    name = local.tzname() or "UTC"
    if name[:1] in "+-":
        name = "UTC" + name
    name = _NORTH_AMERICAN.get(name, name)
    return f"{local:%A}, {month} {local.day}, {local.year}, {local:%H:%M} {name}"


# --- HTML to blocks ---------------------------------------------------------------------------

_CREDIT = re.compile(
    r"^(?P<caption>.*?)(?:^|[.;!?]\s+|\s*[(\[]\s*|\s+[—–-]\s+)"
    r"(?:photo(?:graph)?s?|credit|image|picture)(?:\s+by\s+|\s*[:/]\s*)"
    r"(?P<credit>[^()\[\]]+?)\s*[)\]]?\s*\.?$",
    re.IGNORECASE | re.DOTALL,
)
_BLOCK_TAGS = {
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "ul",
    "ol",
    "figure",
    "pre",
    "hr",
    "table",
    "dl",
    "section",
    "article",
    "details",
}


def split_credit(caption: str) -> tuple[str, str]:
    """``Harold’s wall. Photo: Jane Marlowe`` → (``Harold’s wall.``, ``Jane Marlowe``)."""
    match = _CREDIT.match(caption.strip())
    if not match or not match.group("credit").strip():
        return caption.strip(), ""
    text = match.group("caption").strip()
    if text and text[-1] not in ".!?…":
        text += "."
    return text, match.group("credit").strip()


def html_to_blocks(body_html: str, *, links: bool) -> list[Block]:
    """The sanitised post body as blocks; links become their text, or ``text (url)``."""
    if not body_html.strip():
        return []
    try:
        root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    except ParserError:
        return []
    walker = _Walker(links=links)
    walker.container(root)
    return [b for b in walker.blocks if b.text or b.kind in ("photo", "break")]


class _Walker:
    def __init__(self, *, links: bool) -> None:
        self.links = links
        self.blocks: list[Block] = []
        self.pending_caption = ""

    def container(
        self,
        element: lxml.html.HtmlElement,
        parts: dict[str, Callable[[lxml.html.HtmlElement], None]] | None = None,
    ) -> None:
        """Children of a block container; loose inline content becomes paragraphs.

        `parts` handles the container's own children (a list's items), by tag; whatever else
        the author put there (text before the first item, a stray paragraph) is kept too.
        """
        loose: list[str] = [element.text or ""]
        for child in element:
            if not isinstance(child.tag, str):
                loose.append(child.tail or "")
                continue
            handler = (parts or {}).get(child.tag)
            if handler is not None or child.tag in _BLOCK_TAGS or child.tag == "img":
                self.paragraph_from(loose)
                loose = []
                (handler or self.block)(child)
                loose.append(child.tail or "")
            else:
                self.photos(child)  # a linked picture (<a><img></a>) is still a picture
                loose.append(self.inline(child))
                loose.append(child.tail or "")
        self.paragraph_from(loose)

    def paragraph_from(self, parts: list[str], kind: BlockKind = "paragraph") -> None:
        text = _clean("".join(parts))
        if text:
            self.blocks.append(Block(kind, text))

    def block(self, element: lxml.html.HtmlElement) -> None:
        tag = element.tag
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.paragraph_from([self.inline(element)], "subhead")
        elif tag == "p":
            self.photos(element)
            self.paragraph_from([self.inline(element)])
        elif tag == "blockquote":
            self.blockquote(element)
        elif tag in ("ul", "ol"):
            self.listing(element, level=0)
        elif tag == "figure" or _has_class(element, "div", "figure"):
            self.figure(element)
        elif tag == "img":
            self.photo(element, "")
        elif tag == "pre":
            text = element.text_content().strip("\n")
            if text.strip():
                self.blocks.append(Block("preformatted", text))
        elif tag == "hr":
            self.blocks.append(Block("break", ""))
        elif tag == "table":
            caption = element.find("caption")
            if caption is not None:
                self.paragraph_of(caption)
            for row in element.iter("tr"):
                cells = [_clean(self.inline(cell)) for cell in row if cell.tag in ("td", "th")]
                self.paragraph_from([" | ".join(c for c in cells if c)])
        elif tag == "dl":
            term = self.paragraph_of
            self.container(element, {"dt": term, "dd": term})
        else:
            self.container(element)

    def blockquote(self, element: lxml.html.HtmlElement) -> None:
        credits = [
            c for c in element if c.tag in ("cite", "footer") or _has_class(c, "span", "cite")
        ]
        for cite in credits:
            cite.drop_tree()
        inner = _Walker(links=self.links)
        inner.container(element)
        for block in inner.blocks:
            kind: BlockKind = "quote" if block.kind in ("paragraph", "subhead") else block.kind
            self.blocks.append(Block(kind, block.text, block.marker, block.level))
        for cite in credits:
            text = _clean(self.inline(cite)).lstrip("—–- ")
            if text:
                self.blocks.append(Block("attribution", f"— {text}"))

    def paragraph_of(self, element: lxml.html.HtmlElement) -> None:
        self.paragraph_from([self.inline(element)])

    def listing(self, element: lxml.html.HtmlElement, level: int) -> None:
        number = int(element.get("start", "1") or 1) if element.tag == "ol" else 0

        def item(li: lxml.html.HtmlElement) -> None:
            nonlocal number
            nested = [child for child in li if child.tag in ("ul", "ol")]
            text = _clean(self.inline(li, skip=set(nested)))
            marker = f"{number}." if element.tag == "ol" else "•"
            if text:
                self.blocks.append(Block("item", text, marker, level))
            number += 1
            for child in nested:
                self.listing(child, level + 1)

        self.container(element, {"li": item})

    def figure(self, element: lxml.html.HtmlElement) -> None:
        caption_el = next(
            (c for c in element.iter() if c.tag == "figcaption" or _has_class(c, "p", "caption")),
            None,
        )
        caption = _clean(self.inline(caption_el)) if caption_el is not None else ""
        if caption_el is not None:
            caption_el.drop_tree()  # keeps its tail
        if next(element.iter("img"), None) is None:
            self.container(element)
            if caption:
                self.blocks.append(Block("attribution", f"— {caption}"))
            return
        self.pending_caption = caption  # the figure's first picture takes it
        self.container(element)
        self.pending_caption = ""

    def photos(self, element: lxml.html.HtmlElement) -> None:
        for image in element.iter("img"):
            self.photo(image, "")

    def photo(self, image: lxml.html.HtmlElement, caption: str) -> None:
        caption, self.pending_caption = caption or self.pending_caption, ""
        alt = _clean(image.get("alt", ""))
        text, credit = split_credit(caption or alt or image.get("title", ""))
        self.blocks.append(
            Block("photo", text, caption=text, credit=credit, src=image.get("src", ""), alt=alt)
        )

    def inline(self, element: lxml.html.HtmlElement | None, skip: set | None = None) -> str:
        """The text of an element; <br> is a line break, links per the editor's choice."""
        if element is None:
            return ""
        parts = [element.text or ""]
        for child in element:
            if skip and child in skip:
                parts.append(" " + (child.tail or ""))
                continue
            if not isinstance(child.tag, str) or child.tag == "img":
                pass
            elif child.tag == "br":
                parts.append("\n")
            elif child.tag == "a":
                parts.append(self.link(child))
            elif child.tag in _BLOCK_TAGS:
                parts.append(" " + self.inline(child) + " ")
            else:
                parts.append(self.inline(child))
            parts.append(child.tail or "")
        return "".join(parts)

    def link(self, anchor: lxml.html.HtmlElement) -> str:
        text = self.inline(anchor)
        href = (anchor.get("href") or "").strip()
        if not self.links or not href:
            return text
        target = href.removeprefix("mailto:")
        if _clean(text) in (href, target):
            return target
        return f"{text} ({target})"


def _has_class(element: lxml.html.HtmlElement, tag: str, name: str) -> bool:
    """The HTML4 stand-ins sanitize.py makes for figure, figcaption and cite."""
    return element.tag == tag and name in (element.get("class") or "").split()


def _clean(text: str) -> str:
    """Collapse whitespace, keeping the line breaks that <br> made."""
    lines = [" ".join(line.split()) for line in text.replace("\xa0", " ").split("\n")]
    return "\n".join(line for line in lines if line).strip()
