"""HTML to plain text, and word counts, for the text part and the column draft."""

from __future__ import annotations

import re

import html2text

_WORD = re.compile(r"[\w][\w'’.,\-]*", re.UNICODE)


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
    text = converter.handle(html)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def count_words(text: str) -> int:
    """Words as a newspaper counts them: hyphenated words and numbers like 1,200 count once."""
    return len(_WORD.findall(text))
