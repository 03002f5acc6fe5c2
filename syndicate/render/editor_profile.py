"""What one editor wants from a column draft, read from their row of subscribers/editors.csv.

The CSV columns (publication, timezone, word_limit, formats, quotes, links) arrive as strings in
`Recipient.fields`. A bad value never stops a send: it falls back to the default and the problem
is reported, naming the column, the value and what is expected, so the author can fix the row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from syndicate.models import Recipient, RecipientKind

Format = Literal["txt", "docx", "html", "nitf"]
QuoteStyle = Literal["curly", "straight"]

FORMATS: tuple[Format, ...] = ("txt", "docx", "html", "nitf")
_FORMAT_ALIASES = {"text": "txt", "word": "docx", "htm": "html", "xml": "nitf", "nitf3.6": "nitf"}
_QUOTE_ALIASES = {
    "curly": "curly",
    "typographic": "curly",
    "smart": "curly",
    "straight": "straight",
    "plain": "straight",
    "ascii": "straight",
}
_YES = {"yes", "y", "true", "1", "keep", "on"}
_NO = {"no", "n", "false", "0", "drop", "off"}


@dataclass(frozen=True)
class EditorProfile:
    """Everything that makes one editor's draft differ from another's.

    `formats` are the attachments besides the draft in the email body; `word_limit` is None when
    the editor gave none. The publication's name is deliberately not here: the draft is rendered
    once per profile, so nothing in it may differ between two editors of the same profile.
    """

    timezone: str = "UTC"
    word_limit: int | None = None
    formats: tuple[Format, ...] = ("txt",)
    quotes: QuoteStyle = "curly"
    links: bool = False

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def key(self) -> tuple[str, ...]:
        """A hashable summary: editors with equal keys get byte-identical drafts."""
        return (
            self.timezone,
            str(self.word_limit or ""),
            " ".join(self.formats),
            self.quotes,
            "links" if self.links else "",
        )


@dataclass(frozen=True)
class ProfileDefaults:
    """Used for a column left empty or holding a value that cannot be read."""

    timezone: str = "UTC"
    formats: tuple[Format, ...] = ("txt",)
    quotes: QuoteStyle = "curly"
    links: bool = False


def parse_profile(
    fields: dict[str, str], defaults: ProfileDefaults, where: str = "editor"
) -> tuple[EditorProfile, list[str]]:
    """The profile from CSV fields, and one problem message per value that had to be replaced."""
    problems: list[str] = []

    def problem(column: str, value: str, expected: str, used: str) -> None:
        problems.append(
            f"{where}: {column} {value!r} is not {expected}; using {used} "
            "(fix the row in subscribers/editors.csv)"
        )

    timezone = _text(fields, "timezone") or defaults.timezone
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problem("timezone", timezone, "an IANA time zone like America/Toronto", defaults.timezone)
        timezone = defaults.timezone

    word_limit: int | None = None
    raw_limit = _text(fields, "word_limit").replace(",", "").replace("_", "")
    if raw_limit:
        if raw_limit.isdigit() and int(raw_limit) > 0:
            word_limit = int(raw_limit)
        else:
            problem("word_limit", raw_limit, "a positive whole number of words", "no limit")

    formats = defaults.formats
    raw_formats = _text(fields, "formats")
    if raw_formats:
        chosen: list[Format] = []
        for item in re.split(r"[\s,;+|/]+", raw_formats.lower()):
            name = _FORMAT_ALIASES.get(item.lstrip("."), item.lstrip("."))
            if name in FORMATS:
                if name not in chosen:
                    chosen.append(name)  # type: ignore[arg-type]
            elif item:
                problem("formats", item, "one of " + ", ".join(FORMATS), "the others")
        formats = tuple(chosen) or defaults.formats

    quotes = defaults.quotes
    raw_quotes = _text(fields, "quotes").lower()
    if raw_quotes:
        if raw_quotes in _QUOTE_ALIASES:
            quotes = _QUOTE_ALIASES[raw_quotes]  # type: ignore[assignment]
        else:
            problem("quotes", raw_quotes, "'curly' or 'straight'", defaults.quotes)

    links = defaults.links
    raw_links = _text(fields, "links").lower()
    if raw_links in _YES:
        links = True
    elif raw_links in _NO:
        links = False
    elif raw_links:
        problem("links", raw_links, "'yes' or 'no'", "yes" if defaults.links else "no")

    profile = EditorProfile(
        timezone=timezone,
        word_limit=word_limit,
        formats=formats,
        quotes=quotes,
        links=links,
    )
    return profile, problems


def profile_of(
    recipient: Recipient | None, defaults: ProfileDefaults
) -> tuple[EditorProfile | None, list[str]]:
    """An editor's profile; None for readers, who all get the same edition."""
    if recipient is None or recipient.kind is not RecipientKind.EDITOR:
        return None, []
    return parse_profile(recipient.fields, defaults, where=f"editor {recipient.email}")


def _text(fields: dict[str, str], name: str) -> str:
    return str(fields.get(name) or "").strip()
