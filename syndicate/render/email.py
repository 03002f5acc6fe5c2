"""The reader's email edition: HTML (CSS inlined once) and a plain-text part.

Everything here runs once per edition; recipients differ only by the placeholders compose.py
fills in. An edition whose HTML would pass ``max_html_bytes`` (Gmail clips at ~102 KB) is cut at
a paragraph boundary and ends with a "continue reading" link.
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Any

from jinja2 import Environment
from lxml import html as lxml_html
from premailer import Premailer

from syndicate.headers import one_line
from syndicate.models import Channel, Edition, Post
from syndicate.render.placeholders import RecipientPlaceholders
from syndicate.render.sanitize import sanitize
from syndicate.render.text import html_to_plain
from syndicate.settings import Settings

log = logging.getLogger(__name__)

# Zero-width filler after the preheader, so inbox previews don't continue into the masthead.
PREHEADER_SPACER = "&#847;&zwnj;&nbsp;" * 40
_RTL_LANGUAGES = {"ar", "arc", "dv", "fa", "ha", "he", "khw", "ks", "ku", "ps", "sd", "ur", "yi"}
_MAX_CUT_ATTEMPTS = 6


def inline_css(html: str) -> str:
    """Inline the <style> rules; keep @media rules (with !important) for responsive layout.

    Nothing is fetched (no network, no local files), cssutils stays quiet, and the
    width/height attributes sanitize.py set on images are left alone (Outlook obeys only them).
    """
    return Premailer(
        html,
        strip_important=False,
        allow_network=False,
        allow_loading_external_files=False,
        cssutils_logging_level=logging.CRITICAL,
        disable_validation=True,
        remove_classes=False,
        disable_basic_attributes=["width", "height"],
    ).transform()


def post_context(post: Post, settings: Settings) -> dict[str, Any]:
    body = post.content_html if post.has_full_text else post.summary_html
    safe_body = sanitize(body, post.link)
    published = post.published.astimezone(settings.zone) if post.published else None
    return {
        "site": settings.site,
        "author": settings.author,
        "post": post,
        "published": published,
        "body_html": safe_body,
        "body_text": html_to_plain(safe_body),
        "full_text": post.has_full_text,
        "recipient": RecipientPlaceholders(),
    }


def render_newsletter(post: Post, settings: Settings, env: Environment) -> Edition:
    """Render the reader edition once; recipients differ only by placeholders."""
    newsletter = settings.channels.newsletter
    context = post_context(post, settings)
    title = one_line(post.title)
    context.update(
        title=title,
        language=settings.site.language,
        direction=text_direction(settings.site.language),
        preheader=_preheader(context["body_text"], newsletter.preheader_words),
        preheader_spacer=PREHEADER_SPACER,
        clipped=False,
    )
    html = _render_html(env, context)
    if len(html.encode()) > newsletter.max_html_bytes:
        html = _clip(env, context, html, newsletter.max_html_bytes)
    text = env.get_template("email/edition.txt.j2").render(context)
    subject = one_line(newsletter.subject.format(title=title, site=settings.site.name))
    assert post.id is not None
    return Edition(
        post_id=post.id, channel=Channel.NEWSLETTER, subject=subject, html=html, text=text
    )


def text_direction(language: str) -> str:
    return "rtl" if language.split("-")[0].lower() in _RTL_LANGUAGES else "ltr"


def _render_html(env: Environment, context: dict[str, Any]) -> str:
    return inline_css(env.get_template("email/edition.html.j2").render(context))


def _clip(env: Environment, context: dict[str, Any], html: str, limit: int) -> str:
    """Keep the leading blocks of the body that fit under `limit` bytes once rendered.

    The cut is estimated from the size of the template alone and from how much inlining
    inflated the body, so a long edition costs three premailer runs, rarely more; an edition
    under the limit (nearly all) costs one.
    """
    blocks = _top_level_blocks(context["body_html"])
    body_bytes = max(1, sum(len(b.encode()) for b in blocks))
    context.update(clipped=True, body_html="", body_text="")
    frame = len(_render_html(env, context).encode())
    if frame >= limit:
        raise ValueError(
            f"the email template alone ({frame} bytes) is larger than "
            f"channels.newsletter.max_html_bytes ({limit}); raise the setting or shorten "
            "templates/email/"
        )
    inflation = max(1.0, (len(html.encode()) - frame) / body_bytes)
    budget = int((limit * 0.97 - frame) / inflation)
    for _attempt in range(_MAX_CUT_ATTEMPTS):
        kept = _leading_blocks(blocks, budget)
        context["body_html"] = "\n".join(kept)
        context["body_text"] = html_to_plain(context["body_html"])
        html = _render_html(env, context)
        size = len(html.encode())
        if size <= limit:
            log.info(
                "edition cut to %d of %d blocks (%d bytes, limit %d) with a continue-reading link",
                len(kept),
                len(blocks),
                size,
                limit,
            )
            return html
        budget = int(budget * min(0.9, limit / size))
    raise ValueError(f"could not fit the edition under {limit} bytes in {_MAX_CUT_ATTEMPTS} cuts")


def _top_level_blocks(body_html: str) -> list[str]:
    if not body_html.strip():
        return []
    root = lxml_html.fragment_fromstring(body_html, create_parent="div")
    blocks = [root.text.strip()] if root.text and root.text.strip() else []
    for child in root:
        blocks.append(lxml_html.tostring(child, encoding="unicode", method="html"))
    return blocks


def _leading_blocks(blocks: list[str], budget: int) -> list[str]:
    """Whole blocks while they fit; a first block too big on its own is cut between words."""
    kept: list[str] = []
    used = 0
    for block in blocks:
        size = len(block.encode())
        if used + size > budget:
            if not kept:
                kept.append(_cut_block(block, budget))
            break
        kept.append(block)
        used += size
    return kept


def _cut_block(block: str, budget: int) -> str:
    """One oversized block (a 200 KB paragraph) as a shorter paragraph of its text."""
    text = lxml_html.fragment_fromstring(block, create_parent="div").text_content()
    cut = text[: max(0, budget // 2)]
    cut = cut.rsplit(" ", 1)[0] if " " in cut else cut
    paragraph = lxml_html.Element("p")
    paragraph.text = cut.rstrip() + " …"
    return lxml_html.tostring(paragraph, encoding="unicode")


def _preheader(text: str, words: int) -> str:
    plain = " ".join(
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith(("[", "!", "#", ">"))
    )
    chosen = plain.split()[:words]
    preview = " ".join(chosen) + ("…" if len(plain.split()) > words else "")
    return "".join(c for c in preview if unicodedata.category(c) != "Cc")
