"""The draft as NITF 3.6 XML, the news industry's text format, for editorial systems that import it.

Embargo: ``docdata/@management-status`` is ``embargoed`` until the release time and
``date.release/@norm`` carries that time in UTC (ISO 8601 basic format, as NITF expects).
"""

from __future__ import annotations

import mimetypes
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from syndicate.render.column import ColumnDraft

NITF_VERSION = "-//IPTC//DTD NITF 3.6//EN"
DOCTYPE = '<!DOCTYPE nitf PUBLIC "-//IPTC//DTD NITF 3.6//EN" "http://www.nitf.org/IPTC/NITF/3.6/specification/dtd/nitf-3-6.dtd">'


def nitf_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _sub(parent: ET.Element, tag: str, text: str = "", **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k.replace("_", "-"): v for k, v in attrs.items()})
    if text:
        element.text = text
    return element


def _docdata(head: ET.Element, draft: ColumnDraft) -> None:
    status = draft.status or ("embargoed" if draft.embargoed else "usable")
    docdata = _sub(head, "docdata", management_status=status)
    if draft.corrects:
        _sub(docdata, "correction", info=" ".join(draft.advisory), id_string=draft.corrects)
    _sub(docdata, "doc-id", id_string=draft.file_stem.upper())
    if draft.urgent:
        _sub(docdata, "urgency", ed_urg="1")
    if draft.published:
        _sub(docdata, "date.issue", norm=nitf_time(draft.published))
    if draft.release_at:
        _sub(docdata, "date.release", norm=nitf_time(draft.release_at))
    eds = " ".join(draft.eds)
    _sub(docdata, "ed-msg", info=f"{draft.release}. Eds: {eds}")
    _sub(docdata, "du-key", key=draft.slug.rstrip("/"), version=str(draft.version))
    _sub(docdata, "doc.copyright", year=str(draft.copyright_year), holder=draft.author)
    _sub(docdata, "doc.rights", owner=draft.author, type="text")
    if draft.categories:
        keys = _sub(docdata, "key-list")
        for category in draft.categories:
            _sub(keys, "keyword", key=category)


def _content(content: ET.Element, draft: ColumnDraft) -> None:
    lists: dict[int, ET.Element] = {}
    quote: ET.Element | None = None
    for block in draft.blocks:
        if block.kind != "item":
            lists.clear()
        if block.kind not in ("quote", "attribution"):
            quote = None
        if block.kind == "paragraph":
            _sub(content, "p", block.text)
        elif block.kind == "subhead":
            _sub(content, "hl2", block.text)
        elif block.kind == "quote":
            if quote is None:
                quote = _sub(content, "bq")
            _sub(_sub(quote, "block"), "p", block.text)
        elif block.kind == "attribution":
            parent = quote if quote is not None else content
            _sub(parent, "credit" if quote is not None else "p", block.text.lstrip("— "))
            quote = None
        elif block.kind == "item":
            tag = "ol" if block.marker[:1].isdigit() else "ul"
            lists = {level: el for level, el in lists.items() if level <= block.level}
            current = lists.get(block.level)
            if current is None or current.tag != tag:
                outer = lists.get(block.level - 1)
                parent = outer[-1] if outer is not None and len(outer) else content
                current = lists[block.level] = _sub(parent, tag)
            _sub(current, "li", block.text)
        elif block.kind == "photo":
            media = _sub(content, "media", media_type="image")
            mime = mimetypes.guess_type(block.src)[0] or "image/jpeg"
            _sub(
                media, "media-reference", source=block.src, alternate_text=block.alt, mime_type=mime
            )
            if block.caption:
                _sub(media, "media-caption", block.caption)
            if block.credit:
                _sub(media, "media-producer", block.credit)
        elif block.kind == "preformatted":
            _sub(content, "pre", block.text)
        elif block.kind == "break":
            _sub(content, "hr")


def draft_nitf(draft: ColumnDraft) -> bytes:
    root = ET.Element("nitf", {"version": NITF_VERSION, "baselang": draft.language})
    head = _sub(root, "head")
    _sub(head, "title", draft.headline)
    _docdata(head, draft)
    pubdata = _sub(head, "pubdata", type="web", ex_ref=draft.url)
    pubdata.set("position.section", "Opinion")
    body = _sub(root, "body")
    body_head = _sub(body, "body.head")
    hedline = _sub(body_head, "hedline")
    _sub(hedline, "hl1", draft.headline)
    for alternate in draft.alternate_headlines:
        _sub(hedline, "hl2", alternate)
    note = _sub(body_head, "note", noteclass="editorsnote", type="std")
    _sub(_sub(note, "body.content"), "p", f"{draft.release}. Eds: " + " ".join(draft.eds))
    byline = _sub(body_head, "byline", "By ")
    _sub(byline, "person", draft.author)
    content = _sub(body, "body.content")
    _content(content, draft)
    _sub(content, "p", draft.end_mark)
    body_end = _sub(body, "body.end")
    tagline = _sub(body_end, "tagline", draft.tagline or draft.copyright)
    if draft.tagline:
        _sub(tagline, "copyrite", " " + draft.copyright)
    ET.indent(root)
    for mixed in (byline, tagline):  # indenting would add spaces inside running text
        for child in mixed:
            child.tail = None
    xml = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{DOCTYPE}\n{xml}\n'.encode()
