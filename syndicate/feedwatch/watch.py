"""Poll the feed and turn newly seen posts into sends.

The safety rules live here: the first run records the back catalogue without mailing it, a post
is recognised by its guid forever after (edits are never re-sent), and a feed that fails to fetch
or parse changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from syndicate import db
from syndicate.db import Connection, Engine
from syndicate.db.feed_checks import CheckOutcome
from syndicate.errors import FeedError
from syndicate.feedwatch import feed
from syndicate.feedwatch.feed import FeedHTTPError
from syndicate.models import Channel, Post, SendState
from syndicate.scheduling.policies import Policy, parse_policy
from syndicate.scheduling.timeparse import TimeError, parse_time
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
    queued_for_digest: int = 0
    awaiting_approval: int = 0
    problems: list[str] = field(default_factory=list)
    http_status: int | None = None


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


def channel_policy(settings: Settings, channel: Channel) -> Policy:
    config = (
        settings.channels.newsletter if channel is Channel.NEWSLETTER else settings.channels.column
    )
    return parse_policy(config.policy)


def column_embargo(settings: Settings, column_at: datetime) -> datetime | None:
    """The default embargo (channels.column.embargo), read from the time editors get the column:
    "saturday 00:01" is the first Saturday 00:01 after the column goes out, never before it."""
    rule = settings.channels.column.embargo
    return parse_time(rule, settings.zone, column_at) if rule.strip() else None


def plan_post(
    conn: Connection, settings: Settings, post_id: int, found: datetime, report: PollReport
) -> None:
    """Apply each enabled channel's send policy to a newly found post.

    When the embargo rule names a time the clocks skip or repeat that week, nothing is guessed:
    the column send, and the reader edition waiting for it, are held for the author.
    """
    channels = enabled_channels(settings)
    embargo, unreadable = None, ""
    if Channel.COLUMN in channels:
        column_at = channel_policy(settings, Channel.COLUMN).first_time(found, settings.zone)
        try:
            embargo = column_embargo(settings, column_at)
        except TimeError as exc:
            unreadable = f"channels.column.embargo: {exc}"
    for channel in channels:
        policy = channel_policy(settings, channel)
        held = bool(unreadable) and (
            channel is Channel.COLUMN or settings.channels.newsletter.respect_embargo
        )
        if policy.kind == "digest" and not held:
            db.sends.queue_for_digest(conn, post_id, found)
            report.queued_for_digest += 1
            continue
        # (A digest post whose column embargo is unknown gets a held send of its own instead.)
        state = SendState.AWAITING_APPROVAL if policy.kind == "manual" else SendState.SCHEDULED
        send_id = db.sends.create_send(
            conn,
            post_id,
            channel,
            policy.first_time(found, settings.zone),
            embargo if channel is Channel.COLUMN else None,
            state=SendState.HELD if held else state,
            policy=policy.text,
        )
        if send_id is None:
            continue
        report.sends_created += 1
        report.awaiting_approval += state is SendState.AWAITING_APPROVAL and not held
        if held:
            problem = (
                f"{unreadable}; send {send_id} ({channel.value}) is held: give the column its "
                "embargo with 'syndicate reschedule SEND --at … --embargo …', then "
                f"'syndicate approve {send_id}'"
            )
            report.problems.append(problem)
            log.error("%s", problem)


def first_run_choice(posts: list[Post], policy: str) -> set[str]:
    """Which guids of the back catalogue may be sent on the very first run."""
    ordered = feed.newest_first(posts)
    if policy == "all":
        return {p.guid for p in ordered}
    if policy == "newest" and ordered:
        return {ordered[0].guid}
    return set()


def _before_refresh(conn: Connection, settings: Settings, post: Post, at: datetime) -> None:
    """An edited post editors already have may need a correction (syndicate.corrections)."""
    from syndicate.corrections import control as corrections

    stored = db.corrections.post_by_guid(conn, post.guid)
    if stored is None or (stored.title, stored.content_html, stored.summary_html) == (
        post.title,
        post.content_html,
        post.summary_html,
    ):
        return
    corrections.on_edit(conn, settings, stored, post, at)


def poll(engine: Engine, settings: Settings, at: datetime | None = None) -> PollReport:
    """Fetch and parse first; only a usable feed is written, in one transaction. Every poll,
    whatever comes of it, is recorded as a feed check at `at` (the runtime's clock; else now)."""
    source = feed_source(settings)
    checked_at = at or db.now()
    report = PollReport(source=source)
    try:
        _poll(engine, settings, report, at)
    except Exception as exc:  # recorded, then raised as it was
        status = exc.status if isinstance(exc, FeedHTTPError) else report.http_status
        _record(engine, source, checked_at, CheckOutcome.FAILED, status, exc)
        raise
    outcome = CheckOutcome.NOT_MODIFIED if report.not_modified else CheckOutcome.OK
    _record(engine, source, checked_at, outcome, report.http_status, None, len(report.new_posts))
    return report


def _record(
    engine: Engine,
    source: str,
    at: datetime,
    outcome: CheckOutcome,
    http_status: int | None,
    error: BaseException | None,
    new_posts: int = 0,
) -> None:
    """One feed check; a database that cannot take it is logged, never the poll's failure."""
    text = ""
    if error is not None:
        text = str(error) if isinstance(error, FeedError) else f"{type(error).__name__}: {error}"
    try:
        with engine.begin() as conn:
            db.feed_checks.record_check(
                conn, source, at, outcome, http_status=http_status, error=text, new_posts=new_posts
            )
    except db.DatabaseError as exc:
        log.error("could not record the feed check: %s", exc)


def _poll(engine: Engine, settings: Settings, report: PollReport, at: datetime | None) -> None:
    source = report.source
    with engine.connect() as conn:
        state = db.inbox_state.get_feed_state(conn, source)
    fetched = feed.fetch(
        source,
        etag=state.etag if state else None,
        last_modified=state.last_modified if state else None,
        timeout=settings.feed.timeout_seconds,
        max_bytes=settings.feed.max_bytes,
        user_agent=settings.feed.user_agent,
    )
    report.http_status = fetched.status
    if fetched.content is None:
        report.not_modified = True
        return
    parsed = feed.parse(fetched.content, source)
    report.problems = parsed.problems
    report.first_run = state is None or state.initialized_at is None
    scheduled_at = at or db.now()

    with engine.begin() as conn:
        known = db.posts.known_guids(conn, [p.guid for p in parsed.posts])
        report.new_posts = [p for p in parsed.posts if p.guid not in known]
        if report.first_run:
            allowed = first_run_choice(parsed.posts, settings.feed.first_run)
        else:
            allowed = {p.guid for p in report.new_posts}
        for post in parsed.posts:
            if post.guid in known:
                _before_refresh(conn, settings, post, scheduled_at)
                db.posts.refresh_post(conn, post)
        for post in reversed(feed.newest_first(report.new_posts)):
            eligible = post.guid in allowed
            post_id = db.posts.insert_post(conn, post, eligible=eligible)
            if not eligible:
                continue
            report.eligible.append(post)
            plan_post(conn, settings, post_id, scheduled_at, report)
        if not report.first_run:
            from syndicate.corrections import control as corrections

            corrections.on_feed(conn, settings, parsed.posts, scheduled_at)
        db.inbox_state.save_feed_state(
            conn, source, fetched.etag, fetched.last_modified, initialized=True
        )
    if not report.first_run:
        from syndicate.corrections import control as corrections

        corrections.check_links(engine, settings, parsed.posts, scheduled_at)
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
            "new post %r (%s): %s",
            post.title,
            post.guid,
            "; ".join(
                f"{c.value}: {channel_policy(settings, c).text}" for c in enabled_channels(settings)
            ),
        )
