"""Poll the feed and turn newly seen posts into sends.

The safety rules live here: the first run records the back catalogue without mailing it, a post
is recognised by its guid forever after (edits are never re-sent), and a feed that fails to fetch
or parse changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine

from syndicate import feed, store
from syndicate.models import Channel, Post
from syndicate.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class PollReport:
    source: str
    not_modified: bool = False
    first_run: bool = False
    new_posts: list[Post] = field(default_factory=list)
    eligible: list[Post] = field(default_factory=list)
    sends_created: int = 0
    problems: list[str] = field(default_factory=list)


def enabled_channels(settings: Settings) -> list[Channel]:
    channels = []
    if settings.channels.newsletter.enabled:
        channels.append(Channel.NEWSLETTER)
    if settings.channels.column.enabled:
        channels.append(Channel.COLUMN)
    return channels


def feed_source(settings: Settings) -> str:
    source = settings.feed.source
    return source if feed.is_url(source) else str(settings.path(source))


def first_run_choice(posts: list[Post], policy: str) -> set[str]:
    """Which guids of the back catalogue may be sent on the very first run."""
    ordered = feed.newest_first(posts)
    if policy == "all":
        return {p.guid for p in ordered}
    if policy == "newest" and ordered:
        return {ordered[0].guid}
    return set()


def poll(engine: Engine, settings: Settings, at: datetime | None = None) -> PollReport:
    """Fetch and parse first; only a usable feed is written, in one transaction."""
    source = feed_source(settings)
    report = PollReport(source=source)
    with engine.connect() as conn:
        state = store.get_feed_state(conn, source)
    fetched = feed.fetch(
        source,
        etag=state["etag"] if state else None,
        last_modified=state["last_modified"] if state else None,
        timeout=settings.feed.timeout_seconds,
        max_bytes=settings.feed.max_bytes,
        user_agent=settings.feed.user_agent,
    )
    if fetched.content is None:
        report.not_modified = True
        return report
    parsed = feed.parse(fetched.content, source)
    report.problems = parsed.problems
    report.first_run = state is None or state["initialized_at"] is None
    scheduled_at = at or store.now()

    with engine.begin() as conn:
        known = store.known_guids(conn, [p.guid for p in parsed.posts])
        report.new_posts = [p for p in parsed.posts if p.guid not in known]
        if report.first_run:
            allowed = first_run_choice(parsed.posts, settings.feed.first_run)
        else:
            allowed = {p.guid for p in report.new_posts}
        for post in parsed.posts:
            if post.guid in known:
                store.refresh_post(conn, post)
        for post in reversed(feed.newest_first(report.new_posts)):
            eligible = post.guid in allowed
            post_id = store.insert_post(conn, post, eligible=eligible)
            if not eligible:
                continue
            report.eligible.append(post)
            for channel in enabled_channels(settings):
                if store.create_send(conn, post_id, channel, scheduled_at) is not None:
                    report.sends_created += 1
        store.save_feed_state(conn, source, fetched.etag, fetched.last_modified, initialized=True)
    if report.first_run:
        log.info(
            "first run: %d post(s) in the feed recorded as already published; %d will be sent "
            "(feed.first_run = %r)",
            len(report.new_posts) - len(report.eligible),
            len(report.eligible),
            settings.feed.first_run,
        )
    for post in report.eligible:
        log.info(
            "new post %r (%s): %d send(s) scheduled",
            post.title,
            post.guid,
            len(enabled_channels(settings)),
        )
    return report
