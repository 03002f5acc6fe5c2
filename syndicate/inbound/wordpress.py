"""Comments for WordPress: a WXR file for Tools → Import, or pending comments posted through
the REST API (an application password from the environment)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlparse
from xml.sax.saxutils import escape

import httpx

from syndicate import db
from syndicate.db.replies import ReplyListing
from syndicate.errors import SyndicateError
from syndicate.settings import WordPress

WXR_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/"
 xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:wfw="http://wellformedweb.org/CommentAPI/" xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:wp="http://wordpress.org/export/1.2/">
<channel>
<title>{title}</title>
<link>{link}</link>
<wp:wxr_version>1.2</wp:wxr_version>
"""


class WordPressError(SyndicateError):
    """The WordPress site refused or could not be reached."""


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _gmt(value: datetime | None) -> str:
    value = db.as_utc(value)
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def wxr(site_title: str, site_link: str, comments: Iterable[ReplyListing]) -> str:
    """A WordPress eXtended RSS file with one <item> per post and its comments, unapproved.

    WordPress's importer matches items to existing posts by title and date, and imports the
    comments under them; `wp:comment_approved` 0 leaves them for moderation."""
    by_post: dict[int, list[ReplyListing]] = {}
    for row in comments:
        if row.post_id:
            by_post.setdefault(row.post_id, []).append(row)
    parts = [WXR_HEAD.format(title=escape(site_title), link=escape(site_link))]
    for rows in by_post.values():
        first = rows[0]
        parts.append("<item>\n")
        parts.append(f"<title>{escape(first.post_title or '')}</title>\n")
        parts.append(f"<link>{escape(first.post_link or '')}</link>\n")
        parts.append(f'<guid isPermaLink="false">{escape(first.post_guid or "")}</guid>\n')
        parts.append("<wp:post_type>post</wp:post_type>\n<wp:status>publish</wp:status>\n")
        for row in sorted(rows, key=lambda r: r.id):
            date = _gmt(row.received_at)
            parts.append(
                "<wp:comment>\n"
                f"<wp:comment_id>{row.id}</wp:comment_id>\n"
                f"<wp:comment_author>{_cdata(row.sender_name or row.recipient_name or '')}"
                "</wp:comment_author>\n"
                f"<wp:comment_author_email>{escape(row.sender)}</wp:comment_author_email>\n"
                f"<wp:comment_date>{date}</wp:comment_date>\n"
                f"<wp:comment_date_gmt>{date}</wp:comment_date_gmt>\n"
                f"<wp:comment_content>{_cdata(row.text)}</wp:comment_content>\n"
                "<wp:comment_approved>0</wp:comment_approved>\n"
                "<wp:comment_type>comment</wp:comment_type>\n"
                "<wp:comment_parent>0</wp:comment_parent>\n"
                "</wp:comment>\n"
            )
        parts.append("</item>\n")
    parts.append("</channel>\n</rss>\n")
    return "".join(parts)


def push(config: WordPress, comments: Iterable[ReplyListing]) -> list[tuple[int, str]]:
    """Post each comment as a pending comment; returns (reply id, WordPress comment id or error).

    The post is found by the slug of its link (GET /wp/v2/posts?slug=…)."""
    password = os.environ.get(config.password_env, "")
    if not config.url or not config.username or not password:
        raise WordPressError(
            "set [inbound.wordpress] url and username, and the application password in "
            f"${config.password_env}"
        )
    api = config.url.rstrip("/") + "/wp-json/wp/v2"
    results = []
    with httpx.Client(auth=(config.username, password), timeout=30) as client:
        post_ids: dict[str, int | None] = {}
        for row in comments:
            link = row.post_link or ""
            if link not in post_ids:
                post_ids[link] = _find_post(client, api, link)
            wp_post = post_ids[link]
            if wp_post is None:
                results.append((row.id, f"no WordPress post with the slug of {link}"))
                continue
            response = client.post(
                f"{api}/comments",
                json={
                    "post": wp_post,
                    "author_name": row.sender_name or row.recipient_name or row.sender,
                    "author_email": row.sender,
                    "content": row.text,
                    "date_gmt": db.as_utc(row.received_at).strftime("%Y-%m-%dT%H:%M:%S"),
                    "status": "hold",
                },
            )
            if response.status_code >= 300:
                results.append((row.id, f"HTTP {response.status_code}: {response.text[:200]}"))
            else:
                results.append((row.id, str(response.json().get("id"))))
    return results


def _find_post(client: httpx.Client, api: str, link: str) -> int | None:
    slug = urlparse(link).path.rstrip("/").rsplit("/", 1)[-1]
    try:
        response = client.get(f"{api}/posts", params={"slug": slug, "_fields": "id"})
    except httpx.HTTPError as exc:
        raise WordPressError(f"WordPress at {api} could not be reached: {exc}") from None
    if response.status_code == 401:
        raise WordPressError(f"WordPress at {api} refused the login (check the app password)")
    found = response.json() if response.status_code == 200 else []
    return int(found[0]["id"]) if found else None
