"""Every check of the feed: when, what came of it, the HTTP status, the one-line error and the
new posts found; the newest KEEP_PER_SOURCE kept per feed (and always its newest success)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from syndicate.db import times
from syndicate.db.schema import feed_checks
from syndicate.headers import one_line

# A check every 15 minutes keeps about five days of them.
KEEP_PER_SOURCE = 500
# A recorded error is shown on one line of `status` and the desk: longer is cut.
ERROR_CHARS = 1000


class CheckOutcome(StrEnum):
    OK = "ok"  # fetched and parsed
    NOT_MODIFIED = "not_modified"  # the server answered 304
    FAILED = "failed"  # not fetched, or not a usable feed: nothing was changed


@dataclass(frozen=True)
class FeedCheck:
    id: int
    source: str
    checked_at: datetime
    outcome: CheckOutcome
    http_status: int | None
    error: str
    new_posts: int
    # For a failed check: when the run of failures it ends began, and how long that run is.
    failing_since: datetime | None
    failures_in_row: int

    @property
    def failed(self) -> bool:
        return self.outcome is CheckOutcome.FAILED


def _check(row: Any) -> FeedCheck:
    return FeedCheck(
        id=row.id,
        source=row.source,
        checked_at=times.as_utc(row.checked_at),
        outcome=CheckOutcome(row.outcome),
        http_status=row.http_status,
        error=row.error,
        new_posts=row.new_posts,
        failing_since=times.as_utc(row.failing_since),
        failures_in_row=row.failures_in_row,
    )


def _newest(conn: Connection, source: str, *outcomes: CheckOutcome) -> FeedCheck | None:
    query = select(feed_checks).where(feed_checks.c.source == source)
    if outcomes:
        query = query.where(feed_checks.c.outcome.in_([o.value for o in outcomes]))
    row = conn.execute(
        query.order_by(feed_checks.c.checked_at.desc(), feed_checks.c.id.desc()).limit(1)
    ).first()
    return _check(row) if row else None


def latest(conn: Connection, source: str) -> FeedCheck | None:
    return _newest(conn, source)


def latest_success(conn: Connection, source: str) -> FeedCheck | None:
    return _newest(conn, source, CheckOutcome.OK, CheckOutcome.NOT_MODIFIED)


def latest_failure(conn: Connection, source: str) -> FeedCheck | None:
    return _newest(conn, source, CheckOutcome.FAILED)


def recent_checks(conn: Connection, source: str, limit: int = 20) -> list[FeedCheck]:
    """The newest checks of one feed, newest first."""
    rows = conn.execute(
        select(feed_checks)
        .where(feed_checks.c.source == source)
        .order_by(feed_checks.c.checked_at.desc(), feed_checks.c.id.desc())
        .limit(limit)
    )
    return [_check(row) for row in rows]


def record_check(
    conn: Connection,
    source: str,
    at: datetime,
    outcome: CheckOutcome,
    *,
    http_status: int | None = None,
    error: str = "",
    new_posts: int = 0,
    keep: int = KEEP_PER_SOURCE,
) -> FeedCheck:
    """Record one check (a failure continues the run of failures before it), then prune."""
    failing_since, in_row = None, 0
    if outcome is CheckOutcome.FAILED:
        before = latest(conn, source)
        if before is not None and before.failed and before.failing_since is not None:
            failing_since, in_row = before.failing_since, before.failures_in_row + 1
        else:
            failing_since, in_row = at, 1
    new_id = conn.execute(
        insert(feed_checks)
        .values(
            source=source,
            checked_at=at,
            outcome=outcome.value,
            http_status=http_status,
            # The feed chose much of this text: one line, no control characters, bounded.
            error=one_line(error.splitlines()[0] if error else "")[:ERROR_CHARS],
            new_posts=new_posts,
            failing_since=failing_since,
            failures_in_row=in_row,
        )
        .returning(feed_checks.c.id)
    ).scalar_one()
    _prune(conn, source, keep)
    row = conn.execute(select(feed_checks).where(feed_checks.c.id == new_id)).one()
    return _check(row)


def _prune(conn: Connection, source: str, keep: int) -> None:
    of_source = feed_checks.c.source == source
    oldest_kept = conn.execute(
        select(feed_checks.c.id)
        .where(of_source)
        .order_by(feed_checks.c.id.desc())
        .offset(keep - 1)
        .limit(1)
    ).scalar_one_or_none()
    if oldest_kept is None:
        return
    success = latest_success(conn, source)
    spared = [success.id] if success else []
    conn.execute(
        delete(feed_checks).where(
            of_source, feed_checks.c.id < oldest_kept, feed_checks.c.id.not_in(spared)
        )
    )
