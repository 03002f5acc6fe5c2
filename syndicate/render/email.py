"""The reader's email edition: HTML (CSS inlined once) and a plain-text part."""

from __future__ import annotations

import logging
from typing import Any

from jinja2 import Environment
from premailer import Premailer

from syndicate.models import Channel, Edition, Post
from syndicate.render.placeholders import RecipientPlaceholders
from syndicate.render.sanitize import sanitize
from syndicate.render.text import html_to_plain
from syndicate.settings import Settings


def inline_css(html: str) -> str:
    """Inline the <style> rules; keep @media rules (with !important) for responsive layout."""
    return Premailer(
        html,
        strip_important=False,
        allow_network=False,
        allow_loading_external_files=False,
        cssutils_logging_level=logging.CRITICAL,
        disable_validation=True,
        remove_classes=False,
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
    context = post_context(post, settings)
    context["preheader"] = _preheader(
        context["body_text"], settings.channels.newsletter.preheader_words
    )
    html = inline_css(env.get_template("email/edition.html.j2").render(context))
    text = env.get_template("email/edition.txt.j2").render(context)
    subject = settings.channels.newsletter.subject.format(title=post.title, site=settings.site.name)
    assert post.id is not None
    return Edition(
        post_id=post.id, channel=Channel.NEWSLETTER, subject=subject, html=html, text=text
    )


def _preheader(text: str, words: int) -> str:
    plain = " ".join(
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith(("[", "!"))
    )
    chosen = plain.split()[:words]
    return " ".join(chosen) + ("…" if len(plain.split()) > words else "")
