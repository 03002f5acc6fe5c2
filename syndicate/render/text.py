"""HTML to plain text, and word counts, for the text part and the column draft."""

from __future__ import annotations

import re
from typing import Any

import html2text

# One word counter for the whole program (feed check, column drafts): the column's.
from syndicate.render.column_text import count_words

__all__ = ["count_words", "html_to_plain"]

# Block-level elements html2text treats as inline; without a break an image's alt text and its
# caption run together ("…the top courseHarold’s wall").
_BLOCKS_HTML2TEXT_MISSES = {"figure", "figcaption", "header", "footer", "section", "article", "dt"}
_BLOCKS_HTML2TEXT_MISSES |= {"caption", "details", "summary"}


def html_to_plain(html: str, *, links: bool = True, emphasis: bool = True) -> str:
    """Readable plain text: Unicode kept, no hard wrapping, links as numbered references."""
    converter = html2text.HTML2Text()
    converter.unicode_snob = True
    converter.body_width = 0
    converter.inline_links = False
    converter.links_each_paragraph = False
    converter.protect_links = True
    converter.ignore_links = not links
    converter.ignore_images = not links
    converter.images_to_alt = True
    converter.ignore_emphasis = not emphasis
    converter.single_line_break = False
    # html2text leaves tag_callback unannotated, initialised to None: mypy infers the type None.
    converter.tag_callback = _paragraph_breaks  # type: ignore[assignment]
    text = converter.handle(html)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _paragraph_breaks(converter: Any, tag: str, attrs: dict[str, str | None], start: bool) -> bool:
    if tag == "img" and start:
        # html2text strips the first text inside <b>/<em> on both sides and only puts the space
        # back before more text, not before an image's alt text: "<em>a <img alt=B> c</em>"
        # read "_aB c_", and "<b><img alt=A> c</b>" read "Ac".
        if converter.preceding_stressed:
            converter.o(" ")
            converter.preceding_stressed = False
        converter.stressed = False
    if tag in _BLOCKS_HTML2TEXT_MISSES:
        converter.p()
    elif tag == "img" and start and not converter.ignore_images and not converter.astack:
        # A picture outside a link is described, in brackets, so it does not read as prose.
        alt = " ".join((attrs.get("alt") or "").split())
        if alt:
            converter.o(f"[Picture: {alt}]")
        return True
    return False  # let html2text handle the tag as usual
