"""The draft as a Word document with named paragraph styles.

Newsroom systems map styles on paste or import, so every paragraph carries a named style
(Headline, Byline, Body, Subhead, Block Quote, Photo Caption, Tagline …) and no direct
formatting, which an editor would otherwise have to strip by hand.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from docx import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt

if TYPE_CHECKING:
    from docx.document import Document as DocumentObject

    from syndicate.render.column import ColumnDraft

# name: (size in points, bold, italic, alignment, space after in points, left indent in points)
STYLES: dict[str, tuple[float, bool, bool, str, float, float]] = {
    "Slug": (10, True, False, "left", 0, 0),
    "Release": (10, True, False, "left", 0, 0),
    "Eds": (10, False, False, "left", 12, 0),
    "Headline": (24, True, False, "left", 6, 0),
    "Byline": (11, False, True, "left", 12, 0),
    "Body": (11, False, False, "left", 8, 0),
    "Subhead": (12, True, False, "left", 6, 0),
    "Block Quote": (11, False, True, "left", 8, 24),
    "Quote Attribution": (10, False, False, "left", 8, 24),
    "List Item": (11, False, False, "left", 4, 18),
    "Photo Caption": (10, False, True, "left", 8, 0),
    "Preformatted": (10, False, False, "left", 8, 0),
    "End Mark": (11, False, False, "center", 12, 0),
    "Tagline": (10, False, True, "left", 6, 0),
    "Copyright": (9, False, False, "left", 0, 0),
}
BLOCK_STYLES = {
    "paragraph": "Body",
    "subhead": "Subhead",
    "quote": "Block Quote",
    "attribution": "Quote Attribution",
    "item": "List Item",
    "photo": "Photo Caption",
    "preformatted": "Preformatted",
    "break": "End Mark",
}
_ALIGN = {"left": WD_ALIGN_PARAGRAPH.LEFT, "center": WD_ALIGN_PARAGRAPH.CENTER}


def _add_styles(document: DocumentObject) -> None:
    for name, (size, bold, italic, align, after, indent) in STYLES.items():
        style = document.styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
        style.base_style = document.styles["Normal"]
        style.quick_style = True
        style.font.size = Pt(size)
        style.font.bold = bold
        style.font.italic = italic
        fmt = style.paragraph_format
        fmt.alignment = _ALIGN[align]
        fmt.space_after = Pt(after)
        fmt.left_indent = Pt(indent) if indent else None
    document.styles["Body"].next_paragraph_style = document.styles["Body"]


def draft_docx(draft: ColumnDraft) -> bytes:
    document = Document()
    _add_styles(document)
    props = document.core_properties
    props.title = draft.headline
    props.author = draft.author
    props.subject = draft.slug_line
    props.keywords = ", ".join(draft.categories)
    props.comments = "Eds: " + " ".join(draft.eds)
    stamp = (draft.published or datetime(2000, 1, 1, tzinfo=UTC)).astimezone(UTC)
    props.created = props.modified = stamp.replace(tzinfo=None)
    props.language = draft.language
    props.revision = draft.version

    document.add_paragraph(draft.slug_line, style="Slug")
    document.add_paragraph(draft.release, style="Release")
    document.add_paragraph("Eds: " + " ".join(draft.eds), style="Eds")
    document.add_paragraph(draft.headline, style="Headline")
    document.add_paragraph(draft.byline, style="Byline")
    for block in draft.blocks:
        document.add_paragraph(block.line, style=BLOCK_STYLES[block.kind])
    document.add_paragraph(draft.end_mark, style="End Mark")
    if draft.tagline:
        document.add_paragraph(draft.tagline, style="Tagline")
    document.add_paragraph(draft.copyright, style="Copyright")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
