"""The editor's column draft: slug, release line, Eds note, headline, byline, body, end mark.

`build_draft` decides what the draft says for one editor profile (time zone, quote style, links,
word limit); the templates in templates/column/ and the .docx and NITF writers only lay it out.
The column is rendered once per distinct profile, never once per editor (see EditionCache).
"""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment

from syndicate.errors import SyndicateError
from syndicate.models import Attachment, Channel, Edition, Post, Recipient
from syndicate.render.column_nitf import draft_nitf
from syndicate.render.column_text import (
    COUNTED_KINDS,
    Block,
    count_words,
    html_to_blocks,
    quote_style,
    release_stamp,
)
from syndicate.render.editor_profile import (
    FORMATS,
    EditorProfile,
    ProfileDefaults,
    profile_of,
)
from syndicate.render.email import inline_css, post_context
from syndicate.render.sanitize import sanitize
from syndicate.settings import Settings

log = logging.getLogger(__name__)

_STOPWORDS = {
    "a",
    "an",
    "and",
    "the",
    "of",
    "in",
    "on",
    "for",
    "to",
    "is",
    "it",
    "its",
    "at",
    "by",
    "that",
    "thats",
    "with",
    "from",
    "as",
    "or",
    "but",
    "be",
    "are",
    "was",
}
_NOTE_KEYS = {"slug", "alternate_headlines", "note"}

CONTENT_TYPES = {
    "txt": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "nitf": "application/xml",
}
EXTENSIONS = {"txt": "txt", "html": "html", "docx": "docx", "nitf": "xml"}


@dataclass(frozen=True)
class ColumnNotes:
    """What the author added for editors in columns/<post>.toml (all optional)."""

    slug: str = ""
    alternate_headlines: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class ColumnDraft:
    """Everything one editor's draft says, in order, as plain text."""

    slug: str
    release: str
    embargoed: bool
    release_at: datetime | None
    word_count: int
    word_limit: int | None
    alternate_headlines: tuple[str, ...]
    note: str
    headline: str
    byline: str
    blocks: tuple[Block, ...]
    end_mark: str
    tagline: str
    copyright: str
    copyright_year: int
    author: str
    language: str
    published: datetime | None
    categories: tuple[str, ...] = ()
    url: str = ""
    profile: EditorProfile = field(default_factory=EditorProfile)
    # Set on a correction, substitute or kill (syndicate.corrections.advisory): the advisory's
    # own Eds sentences come first; NITF carries the version, status and what it corrects.
    advisory: tuple[str, ...] = ()
    mark: str = ""  # after the slug: JOB-NOT-WORK/CORRECTION v2
    version: int = 1
    status: str = ""  # NITF management-status when not the usual usable/embargoed
    urgent: bool = False
    corrects: str = ""  # the doc-id of the version this one replaces

    @property
    def slug_line(self) -> str:
        return self.slug + self.mark

    @property
    def file_stem(self) -> str:
        return "-".join(re.findall(r"[a-z0-9]+", self.slug_line.lower())) or "column"

    @property
    def over_by(self) -> int:
        return max(0, self.word_count - self.word_limit) if self.word_limit else 0

    @property
    def eds(self) -> list[str]:
        """The sentences of the ``Eds:`` line, in order."""
        if self.status == "canceled":
            return list(self.advisory)
        parts = [*self.advisory, f"{self.word_count:,} word{'' if self.word_count == 1 else 's'}."]
        if self.over_by:
            parts.append(
                f"OVER YOUR {self.word_limit:,}-WORD LIMIT BY {self.over_by:,} "
                f"WORD{'S' if self.over_by != 1 else ''}."
            )
        if self.alternate_headlines:
            label = "Alternate headline" + ("s" if len(self.alternate_headlines) > 1 else "")
            parts.append(f"{label}: " + "; ".join(self.alternate_headlines) + ".")
        if self.note:
            parts.append(self.note)
        return parts


# --- what the draft says ----------------------------------------------------------------------


def default_profile(settings: Settings) -> EditorProfile:
    """The profile of an editor whose row leaves every column empty (and of previews)."""
    defaults = profile_defaults(settings)
    return EditorProfile(
        timezone=defaults.timezone,
        formats=defaults.formats,
        quotes=defaults.quotes,
        links=defaults.links,
    )


def profile_defaults(settings: Settings) -> ProfileDefaults:
    column = settings.channels.column
    return ProfileDefaults(
        timezone=settings.author.timezone,
        formats=tuple(column.formats),
        quotes=column.quotes,
        links=column.links,
    )


def slug_line(title: str, words: int = 3, permalink: str = "") -> str:
    """A short upper-case slug such as ``JOB-NOT-WORK/``.

    Taken from the permalink's last segment when it is a word slug (WordPress keeps it when the
    title is edited, so every later version of the draft has the same slug), else from the title.
    """
    segment = urlsplit(permalink).path.rstrip("/").rsplit("/", 1)[-1] if permalink else ""
    source = segment if re.search(r"[A-Za-z]{3}", segment) else title
    source = re.sub(r"\.(html?|php|aspx?)$", "", source)
    tokens = re.findall(r"[A-Za-z0-9]+", source.replace("’", "").replace("'", ""))
    significant = [t for t in tokens if t.lower() not in _STOPWORDS] or tokens or ["COLUMN"]
    return "-".join(significant[:words]).upper() + "/"


def _normal_slug(value: str) -> str:
    tokens = re.findall(r"[A-Za-z0-9]+", value)
    return "-".join(tokens).upper() + "/" if tokens else ""


def read_notes(post: Post, settings: Settings) -> ColumnNotes:
    """The author's notes for this post, if a file exists; a bad file is reported and ignored."""
    folder = settings.path(settings.channels.column.notes_dir)
    path = folder / f"{_post_slug(post)}.toml"
    if not path.exists():
        return ColumnNotes()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        log.warning("%s: cannot read column notes (%s); draft sent without them", path, exc)
        return ColumnNotes()
    for key in sorted(set(raw) - _NOTE_KEYS):
        log.warning("%s: unknown key %r ignored (expected %s)", path, key, ", ".join(_NOTE_KEYS))
    alternates = raw.get("alternate_headlines", [])
    if isinstance(alternates, str):
        alternates = [alternates]
    if not isinstance(alternates, list) or not all(isinstance(a, str) for a in alternates):
        log.warning("%s: alternate_headlines must be a list of strings; ignored", path)
        alternates = []
    return ColumnNotes(
        slug=_normal_slug(str(raw.get("slug", ""))),
        alternate_headlines=tuple(a.strip() for a in alternates if a.strip()),
        note=" ".join(str(raw.get("note", "")).split()),
    )


def _post_slug(post: Post) -> str:
    segment = urlsplit(post.link).path.rstrip("/").rsplit("/", 1)[-1]
    segment = re.sub(r"\.(html?|php|aspx?)$", "", segment)
    return segment if re.fullmatch(r"[A-Za-z0-9][\w.-]*", segment or "") else f"post-{post.id}"


def release_line(
    settings: Settings, embargo: datetime | None, profile: EditorProfile
) -> tuple[str, bool]:
    """The release line in the editor's time zone, and whether it is an embargo."""
    column = settings.channels.column
    if embargo is None:
        release = column.release
        return f"FOR RELEASE: {release.upper() if release == 'upon receipt' else release}", False
    stamp = release_stamp(embargo, profile.zone)
    if column.embargo_wording == "for release":
        return f"FOR RELEASE: {stamp}", True
    return f"EMBARGOED UNTIL: {stamp}", True


def build_draft(
    post: Post,
    settings: Settings,
    embargo: datetime | None = None,
    profile: EditorProfile | None = None,
) -> ColumnDraft:
    """What the draft says for one editor profile."""
    profile = profile or default_profile(settings)
    column = settings.channels.column
    notes = read_notes(post, settings)
    body_html = sanitize(post.content_html if post.has_full_text else post.summary_html, post.link)
    counted = html_to_blocks(body_html, links=False)
    word_count = sum(count_words(b.text) for b in counted if b.kind in COUNTED_KINDS)
    blocks = counted if not profile.links else html_to_blocks(body_html, links=True)

    def q(text: str) -> str:
        return quote_style(text, profile.quotes)

    styled = tuple(
        Block(
            b.kind,
            q(b.text),
            b.marker,
            b.level,
            caption=q(b.caption),
            credit=q(b.credit),
            src=b.src,
            alt=q(b.alt),
        )
        for b in blocks
    )
    release, embargoed = release_line(settings, embargo, profile)
    year = (post.published or datetime.now(settings.zone)).astimezone(settings.zone).year
    author = post.author or settings.author.name
    return ColumnDraft(
        slug=notes.slug or slug_line(post.title, column.slug_words, post.link),
        release=release,
        embargoed=embargoed,
        release_at=embargo,
        word_count=word_count,
        word_limit=profile.word_limit,
        alternate_headlines=tuple(q(a) for a in notes.alternate_headlines),
        note=q(notes.note),
        headline=q(" ".join(post.title.split())),
        byline=f"By {author}",
        blocks=styled,
        end_mark=column.end_mark,
        tagline=q(settings.author.tagline),
        copyright=column.copyright.format(year=year, author=author, site=settings.site.name),
        copyright_year=year,
        author=author,
        language=settings.site.language,
        published=post.published,
        categories=post.categories,
        url=post.link,
        profile=profile,
    )


# --- how it is laid out -----------------------------------------------------------------------


def draft_context(post: Post, settings: Settings, draft: ColumnDraft) -> dict[str, Any]:
    context = post_context(post, settings)
    context.update(
        draft=draft,
        slug=draft.slug_line,
        release=draft.release,
        word_count=f"{draft.word_count:,}",
        eds=" ".join(draft.eds),
        headline=draft.headline,
        byline=draft.byline,
        blocks=draft.blocks,
        end_mark=draft.end_mark,
        tagline=draft.tagline,
        copyright=draft.copyright,
        profile=draft.profile,
    )
    return context


def draft_text(env: Environment, context: dict[str, Any]) -> str:
    text = env.get_template("column/draft.txt.j2").render(context)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def column_file(
    fmt: str, draft: ColumnDraft, env: Environment, context: dict[str, Any]
) -> Attachment:
    """One attachment of the draft: txt, html, docx or nitf."""
    filename = f"{draft.file_stem}.{EXTENSIONS[fmt]}"
    if fmt == "txt":
        data = draft_text(env, context).encode("utf-8")
    elif fmt == "html":
        data = inline_css(env.get_template("column/column.html.j2").render(context)).encode()
    elif fmt == "docx":
        from syndicate.render.column_docx import draft_docx  # python-docx (~3 MB): drafts only

        data = draft_docx(draft)
    elif fmt == "nitf":
        data = draft_nitf(draft)
    else:
        raise ValueError(f"unknown column format {fmt!r}; expected txt, docx, html or nitf")
    return Attachment(filename, CONTENT_TYPES[fmt], data)


def render_column(
    post: Post,
    settings: Settings,
    env: Environment,
    embargo: datetime | None = None,
    profile: EditorProfile | None = None,
) -> Edition:
    """The editor's email: a note from the author, the draft below it, chosen attachments."""
    draft = build_draft(post, settings, embargo, profile)
    return column_edition(post, settings, env, draft, "column/note.txt.j2", "column/draft.html.j2")


def column_edition(
    post: Post,
    settings: Settings,
    env: Environment,
    draft: ColumnDraft,
    text_template: str,
    html_template: str,
    subject_label: str = "",
    **extra: Any,
) -> Edition:
    """An email to editors carrying `draft` in its text and as attachments in each format of its
    profile (the column, or an advisory about it: `subject_label` then leads the subject, and
    `extra` is what its templates say besides the draft)."""
    context = draft_context(post, settings, draft)
    attachments = tuple(column_file(fmt, draft, env, context) for fmt in draft.profile.formats)
    context.update(
        extra,
        draft_text=draft_text(env, context),
        attachment_names=[a.filename for a in attachments],
    )
    text = env.get_template(text_template).render(context)
    html = inline_css(env.get_template(html_template).render(context))
    subject = settings.channels.column.subject.format(title=post.title, site=settings.site.name)
    assert post.id is not None
    return Edition(
        post_id=post.id,
        channel=Channel.COLUMN,
        subject=f"{subject_label}: {subject}" if subject_label else subject,
        html=html,
        text=text,
        attachments=attachments,
    )


def preview_file(
    post: Post,
    settings: Settings,
    env: Environment,
    fmt: str,
    embargo: datetime | None = None,
    recipient: Recipient | None = None,
) -> Attachment:
    """One format of the draft, as `recipient` (an editor) would get it attached."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise SyndicateError(f"--format {fmt!r}: the column comes as " + ", ".join(FORMATS))
    profile, problems = profile_of(recipient, profile_defaults(settings))
    for problem in problems:
        log.warning("%s", problem)
    draft = build_draft(post, settings, embargo, profile)
    return column_file(fmt, draft, env, draft_context(post, settings, draft))
