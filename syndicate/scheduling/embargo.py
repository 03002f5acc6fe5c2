"""The one embargo rule: what holds a send back, and until when.

Its domain is a send (its channel and its own `embargo_until`) together with its post's column
send (that send's `embargo_until` and state):

- a column draft is never held back by an embargo: its embargo is the release line printed in it;
- a reader edition waits for its own embargo (`syndicate schedule --channel newsletter
  --embargo …`) and, when `channels.newsletter.respect_embargo` is on, for the embargo of its
  post's column send, unless that column send was cancelled.

Everything that decides or shows whether readers may get a post asks `reader_release` (through
`releases` and `post_releases` for many at once): the scheduler's due sends, the digest, the
`send` guard, `sends list`, `status` and `run`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from syndicate import db
from syndicate.db import Connection
from syndicate.db.sends import Send
from syndicate.models import Channel, SendState
from syndicate.scheduling.timeparse import describe


@dataclass(frozen=True)
class Release:
    """The instant before which a reader edition must not go out, and whose embargo it is."""

    until: datetime
    column_send: int | None = None  # None: the send's own embargo

    def holds(self, at: datetime) -> bool:
        return at < self.until

    @property
    def whose(self) -> str:
        if self.column_send is None:
            return "its own embargo"
        return f"the column's embargo (send {self.column_send})"

    def explain(self, zone: ZoneInfo) -> str:
        return f"{self.whose} until {describe(self.until, zone)}"


def reader_release(
    channel: Channel | str,
    own_embargo: datetime | None,
    column: Send | None,
    *,
    respect_column: bool,
) -> Release | None:
    """The latest embargo this send must wait for, or None when nothing holds it back.

    `column` is the post's column send (a row with id, state and embargo_until), if any.
    """
    if Channel(channel) is not Channel.NEWSLETTER:
        return None
    candidates = []
    own = db.as_utc(own_embargo)
    if own is not None:
        candidates.append(Release(own))
    if respect_column and column is not None and column.state != SendState.CANCELLED.value:
        until = db.as_utc(column.embargo_until)
        if until is not None:
            candidates.append(Release(until, int(column.id)))
    return max(candidates, key=lambda r: r.until, default=None)


def releases(
    conn: Connection, sends: Iterable[Send], *, respect_column: bool
) -> dict[int, Release]:
    """reader_release for each send (rows of the sends table), by send id; only those held."""
    rows = list(sends)
    columns = db.sends.column_sends(conn, {int(row.post_id) for row in rows})
    found = {}
    for row in rows:
        release = reader_release(
            row.channel,
            row.embargo_until,
            columns.get(int(row.post_id)),
            respect_column=respect_column,
        )
        if release is not None:
            found[int(row.id)] = release
    return found


def post_releases(
    conn: Connection, post_ids: Iterable[int], *, respect_column: bool
) -> dict[int, Release]:
    """What would hold back a reader edition of each post that has no send of its own yet (a
    post waiting for the digest, a `send` about to create one), by post id."""
    ids = set(post_ids)
    columns = db.sends.column_sends(conn, ids)
    found = {}
    for post_id in ids:
        release = reader_release(
            Channel.NEWSLETTER, None, columns.get(post_id), respect_column=respect_column
        )
        if release is not None:
            found[post_id] = release
    return found


def draft_embargo(conn: Connection, post_id: int) -> datetime | None:
    """The embargo printed in a post's column draft: its column send's, if it has one (a draft
    itself is never held back)."""
    column = db.sends.column_sends(conn, {post_id}).get(post_id)
    return db.as_utc(column.embargo_until) if column else None
