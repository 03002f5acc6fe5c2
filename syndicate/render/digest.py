"""The digest: one reader edition listing every new post since the last digest.

The digest becomes a post of its own (guid ``syndicate:digest:<time>``, never eligible for
sending by itself) whose body is rendered from ``email/digest.html.j2``; dispatch then delivers
it like any other reader edition, with the same masthead, footer and unsubscribe links.
"""

from __future__ import annotations

from datetime import datetime

from jinja2 import Environment

from syndicate.models import Post
from syndicate.render.email import post_context
from syndicate.settings import Settings

DIGEST_GUID_PREFIX = "syndicate:digest:"


def digest_title(posts: list[Post], settings: Settings) -> str:
    if len(posts) == 1:
        return posts[0].title
    return f"{len(posts)} new posts from {settings.site.name}"


def render_digest_body(posts: list[Post], settings: Settings, env: Environment) -> str:
    """The digest's HTML body: every post's title, date, summary and link, oldest first."""
    items = [post_context(post, settings) for post in posts]
    return env.get_template("email/digest.html.j2").render(
        site=settings.site, author=settings.author, items=items
    )


def digest_post(
    posts: list[Post], settings: Settings, env: Environment, scheduled_at: datetime
) -> Post:
    """The digest as a Post, ready to be stored and sent through the ordinary reader edition."""
    return Post(
        guid=f"{DIGEST_GUID_PREFIX}{scheduled_at.isoformat()}",
        title=digest_title(posts, settings),
        link=settings.site.url,
        author=settings.author.name,
        # No date: `find_post("latest")` orders by it and must keep finding the author's posts.
        published=None,
        summary_html="",
        content_html=render_digest_body(posts, settings, env),
    )
