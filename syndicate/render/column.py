"""The editor's column draft: slug, release line, Eds note, headline, byline, body, end mark."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from jinja2 import Environment

from syndicate.models import Attachment, Channel, Edition, Post
from syndicate.render.email import inline_css, post_context
from syndicate.render.text import count_words, html_to_plain
from syndicate.settings import Settings

_STOPWORDS = {"a", "an", "and", "the", "of", "in", "on", "for", "to", "is", "it", "its", "at", "by"}


def slug_line(title: str, words: int = 3) -> str:
    """A short upper-case slug such as ``JOB-VS-WORK/``, stable for a given title."""
    tokens = re.findall(r"[A-Za-z0-9]+", title.replace("’", "").replace("'", ""))
    significant = [t for t in tokens if t.lower() not in _STOPWORDS] or tokens or ["COLUMN"]
    return "-".join(significant[:words]).upper() + "/"


def release_line(release: str, embargo: datetime | None, zone: ZoneInfo) -> str:
    if embargo is None:
        return f"FOR RELEASE: {release.upper() if release == 'upon receipt' else release}"
    local = embargo.astimezone(zone)
    stamp = f"{local:%A, %b}. {local.day}, {local.year}, {local:%H:%M} {local.tzname()}"
    return f"EMBARGOED UNTIL: {stamp}"


def column_body(post: Post) -> str:
    """The body as clean paragraphs: no HTML, no link targets, images as their alt text."""
    html = post.content_html if post.has_full_text else post.summary_html
    return html_to_plain(html, links=False, emphasis=False).strip()


def render_column(
    post: Post, settings: Settings, env: Environment, embargo: datetime | None = None
) -> Edition:
    context = post_context(post, settings)
    body = column_body(post)
    column = settings.channels.column
    year = (post.published or datetime.now()).year
    context.update(
        slug=slug_line(post.title),
        release=release_line(column.release, embargo, settings.zone),
        word_count=count_words(body),
        column_text=body,
        paragraphs=[p.strip() for p in body.split("\n\n") if p.strip()],
        end_mark=column.end_mark,
        tagline=settings.author.tagline,
        copyright=column.copyright.format(
            year=year, author=settings.author.name, site=settings.site.name
        ),
    )
    draft = env.get_template("column/draft.txt.j2").render(context)
    context["draft_text"] = draft
    text = env.get_template("column/note.txt.j2").render(context)
    html = inline_css(env.get_template("column/draft.html.j2").render(context))
    subject = column.subject.format(title=post.title, site=settings.site.name)
    filename = context["slug"].rstrip("/").lower() + ".txt"
    attachment = Attachment(filename, "text/plain; charset=utf-8", draft.encode("utf-8"))
    assert post.id is not None
    return Edition(
        post_id=post.id,
        channel=Channel.COLUMN,
        subject=subject,
        html=html,
        text=text,
        attachments=(attachment,),
    )
