"""Fetch the blog's feed and turn it into Posts.

Fetching is polite and bounded: conditional GET (a 304 means nothing is parsed), timeouts and a
size cap. Parsing tolerates a slightly ill-formed feed (with a warning) but rejects one that
yields nothing usable, before any state is touched.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syndicate.errors import FeedError
from syndicate.models import ParsedFeed, Post

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchResult:
    """Raw feed bytes, or `content=None` when the server said nothing changed (304); `status`
    is the HTTP answer (None for a file)."""

    source: str
    content: bytes | None
    etag: str | None = None
    last_modified: str | None = None
    status: int | None = None


class FeedHTTPError(FeedError):
    """The feed's server answered with an HTTP error."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def fetch(
    source: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = 20.0,
    max_bytes: int = 10_000_000,
    user_agent: str = "syndicate",
) -> FetchResult:
    if not is_url(source):
        return _read_file(Path(source), max_bytes)
    # Imported here (and feedparser in parse): `syndicate status` only asks is_url.
    import httpx

    headers = {
        "User-Agent": user_agent,
        "Accept": "application/rss+xml, application/atom+xml, "
        "application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5",
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=5) as client,
            client.stream("GET", source, headers=headers) as response,
        ):
            if response.status_code == 304:
                log.info("feed %s not modified since last check", source)
                return FetchResult(source, None, etag, last_modified, status=304)
            if response.status_code >= 400:
                raise FeedHTTPError(
                    f"{source}: the server answered HTTP {response.status_code}",
                    response.status_code,
                )
            content = _read_capped(response, source, max_bytes)
            return FetchResult(
                source,
                content,
                response.headers.get("ETag"),
                response.headers.get("Last-Modified"),
                status=response.status_code,
            )
    except httpx.TimeoutException:
        raise FeedError(
            f"{source}: no answer within {timeout:g} s (feed.timeout_seconds)"
        ) from None
    except httpx.HTTPError as exc:
        raise FeedError(f"{source}: could not fetch the feed: {exc}") from None


def _read_capped(response: httpx.Response, source: str, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FeedError(
                f"{source}: the feed is larger than {max_bytes} bytes (feed.max_bytes); "
                "raise the limit if it is really that big"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _read_file(path: Path, max_bytes: int) -> FetchResult:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise FeedError(f"{path}: the feed is larger than {max_bytes} bytes (feed.max_bytes)")
        return FetchResult(str(path), path.read_bytes())
    except FileNotFoundError:
        raise FeedError(f"{path}: feed file not found (check feed.source in settings)") from None
    except OSError as exc:
        raise FeedError(f"{path}: cannot read the feed file: {exc.strerror}") from None


def parse(content: bytes, source: str) -> ParsedFeed:
    """Posts in feed order plus problems; raises FeedError when nothing usable is there."""
    import feedparser

    parsed = feedparser.parse(content, sanitize_html=False, resolve_relative_uris=False)
    problems: list[str] = []
    if parsed.bozo:
        problems.append(f"the feed is not well-formed: {parsed.get('bozo_exception')}")
    if not parsed.entries and not parsed.feed.get("title"):
        detail = problems[0] if problems else "it has no title and no entries"
        raise FeedError(f"{source}: not a usable RSS or Atom feed ({detail})")
    posts: list[Post] = []
    seen: set[str] = set()
    for index, entry in enumerate(parsed.entries, start=1):
        post, problem = _to_post(entry, parsed.feed)
        if problem:
            problems.append(f"entry {index}: {problem}")
        if post is None:
            continue
        if post.guid in seen:
            problems.append(f"entry {index}: duplicate guid {post.guid!r}, kept the first")
            continue
        seen.add(post.guid)
        posts.append(post)
    for problem in problems:
        log.warning("%s: %s", source, problem)
    return ParsedFeed(title=parsed.feed.get("title", ""), posts=posts, problems=problems)


def _to_post(entry: Any, feed: Any) -> tuple[Post | None, str]:
    link = entry.get("link", "") or ""
    guid = entry.get("id") or link
    title = (entry.get("title") or "").strip()
    if not guid:
        return None, f"{title or 'untitled entry'!r} has neither guid nor link; skipped"
    content = ""
    for item in entry.get("content", []):
        if "html" in item.get("type", "html") and len(item.get("value", "")) > len(content):
            content = item["value"]
    summary = entry.get("summary", "") or ""
    problems = [] if title else ["has no title"]
    link = (link or guid).strip()
    if not is_url(link):
        problems.append(f"link {link[:80]!r} is not an http(s) URL; the post goes out without one")
        link = ""
    return (
        Post(
            guid=guid,
            title=title or "(untitled)",
            link=link,
            author=entry.get("author") or feed.get("author") or "",
            published=_published(entry),
            summary_html=summary,
            content_html=content,
            categories=tuple(
                tag.get("term", "") for tag in entry.get("tags", []) if tag.get("term")
            ),
        ),
        "; ".join(problems),
    )


def _published(entry: Any) -> datetime | None:
    # dict.get bypasses feedparser's deprecated updated→published key mapping.
    stamp = dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
    if not stamp:
        return None
    return datetime.fromtimestamp(calendar.timegm(stamp), tz=UTC)


def newest_first(posts: list[Post]) -> list[Post]:
    """Sort by publication date; undated posts keep feed order after dated ones."""
    dated = sorted((p for p in posts if p.published), key=lambda p: p.published, reverse=True)  # type: ignore[arg-type,return-value]
    return dated + [p for p in posts if not p.published]
