"""`[channels.newsletter]` (readers) and `[channels.column]` (newspaper editors)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from syndicate.settings.fields import (
    EditorPolicy,
    ReaderPolicy,
    Section,
    SubjectTemplate,
    TimeRule,
    require_fields,
)


class Newsletter(Section):
    enabled: bool = True
    subject: SubjectTemplate = "{title}"
    preheader_words: int = Field(default=30, ge=0)
    # Gmail clips HTML over ~102 KB; a longer edition is cut at a paragraph with a link.
    max_html_bytes: int = Field(default=95_000, ge=10_000)
    # When readers get a new post: see syndicate.scheduling.timeparse.POLICY_HELP.
    policy: ReaderPolicy = "immediately"
    # No reader edition leaves before the column's embargo (channels.column.embargo or
    # `syndicate schedule --embargo`).
    respect_embargo: bool = True
    # A sent correction of the column also sends readers of the post a short note ("notice").
    corrections: Literal["off", "notice"] = "off"


class ColumnSettings(Section):
    enabled: bool = True
    subject: SubjectTemplate = "Column: {title}"
    end_mark: str = "-30-"
    release: str = "upon receipt"
    copyright: Annotated[
        str, AfterValidator(lambda v: require_fields(v, {"year", "author", "site"}))
    ] = "© {year} {author}. Distributed by {site}."
    # Editor defaults for a column left empty in subscribers/editors.csv.
    quotes: Literal["curly", "straight"] = "curly"
    links: bool = False
    formats: list[Literal["txt", "docx", "html", "nitf"]] = Field(default=["txt"])
    # Words in a slug derived from the permalink or title (JOB-NOT-WORK/).
    slug_words: int = Field(default=3, ge=1, le=8)
    # Folder of per-post notes: <permalink-slug>.toml with slug, alternate_headlines, note.
    notes_dir: str = "columns"
    # How a send's embargo time is printed: "EMBARGOED UNTIL: …" or "FOR RELEASE: …".
    embargo_wording: Literal["embargoed", "for release"] = "embargoed"
    # When editors get a new column: see syndicate.scheduling.timeparse.POLICY_HELP (no digest).
    policy: EditorPolicy = "immediately"
    # Default embargo for each new column, read in the author's zone from the column's send
    # time, e.g. "saturday 00:01" or "+2d"; empty for none.
    embargo: TimeRule = ""
    # An edit of a column editors already have (syndicate.corrections): "ask" the author,
    # send an advisory "auto"matically, or "off"; edits changing fewer words are ignored.
    corrections: Literal["ask", "auto", "off"] = "ask"
    corrections_min_words: int = Field(default=1, ge=1)


class Channels(Section):
    newsletter: Newsletter = Newsletter()
    column: ColumnSettings = ColumnSettings()
