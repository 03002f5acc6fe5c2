"""Posts read from the feed, and the posts list with each post's sends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, func, insert, select, update
from sqlalchemy.engine import Connection

from syndicate.db import times
from syndicate.db.engine import new_id
from syndicate.db.schema import deliveries, digest_posts, posts, sends
from syndicate.models import Channel, DeliveryState, Post, SendState


def known_guids(conn: Connection, guids: list[str]) -> set[str]:
    if not guids:
        return set()
    return set(conn.execute(select(posts.c.guid).where(posts.c.guid.in_(guids))).scalars())


def _editable(post: Post) -> dict[str, Any]:
    """The columns an edit of the post in the feed may change."""
    return {
        "title": post.title,
        "link": post.link,
        "author": post.author,
        "summary_html": post.summary_html,
        "content_html": post.content_html,
        "categories": list(post.categories),
    }


def insert_post(conn: Connection, post: Post, eligible: bool) -> int:
    result = conn.execute(
        insert(posts).values(
            guid=post.guid,
            published=post.published,
            first_seen=times.now(),
            eligible=eligible,
            **_editable(post),
        )
    )
    return new_id(result)


def refresh_post(conn: Connection, post: Post) -> None:
    """Keep the stored copy of an edited post current; an edit never triggers a new send."""
    conn.execute(update(posts).where(posts.c.guid == post.guid).values(_editable(post)))


def post_from_row(row: Any) -> Post:
    return Post(
        id=row.id,
        guid=row.guid,
        title=row.title,
        link=row.link,
        author=row.author,
        published=times.as_utc(row.published),
        summary_html=row.summary_html,
        content_html=row.content_html,
        categories=tuple(row.categories or ()),
    )


def post_by_guid(conn: Connection, guid: str) -> Post | None:
    row = conn.execute(select(posts).where(posts.c.guid == guid)).first()
    return post_from_row(row) if row else None


def get_post(conn: Connection, post_id: int) -> Post | None:
    row = conn.execute(select(posts).where(posts.c.id == post_id)).first()
    return post_from_row(row) if row else None


def find_post(conn: Connection, ref: str) -> Post | None:
    """A post by id, guid, link, or 'latest' (newest published, then newest seen)."""
    if ref == "latest":
        query = select(posts).order_by(
            posts.c.published.desc().nulls_last(), posts.c.first_seen.desc(), posts.c.id.desc()
        )
    elif ref.isdigit():
        query = select(posts).where(posts.c.id == int(ref))
    else:
        query = select(posts).where((posts.c.guid == ref) | (posts.c.link == ref))
    row = conn.execute(query.limit(1)).first()
    return post_from_row(row) if row else None


@dataclass(frozen=True)
class ListedSend:
    """A post's send on one channel, as the posts list shows it."""

    id: int
    state: SendState
    scheduled_at: datetime
    sent: int
    total: int


@dataclass(frozen=True)
class PostListing:
    """A post with its send on each channel and the digest that carries it, if any."""

    id: int
    guid: str
    title: str
    link: str
    published: datetime | None
    first_seen: datetime
    # False: found in the back catalogue on the first run, never sent.
    eligible: bool
    sends: dict[Channel, ListedSend]
    digest_send: int | None


def list_posts_with_sends(conn: Connection, limit: int | None = None) -> list[PostListing]:
    """Posts, newest first, each with its sends per channel (state and delivery counts)."""
    query = select(
        posts.c.id,
        posts.c.guid,
        posts.c.title,
        posts.c.link,
        posts.c.published,
        posts.c.first_seen,
        posts.c.eligible,
    ).order_by(func.coalesce(posts.c.published, posts.c.first_seen).desc(), posts.c.id.desc())
    if limit:
        query = query.limit(limit)
    found = list(conn.execute(query))
    if not found:
        return []
    ids = [row.id for row in found]
    counts = (
        select(
            deliveries.c.send_id,
            func.count().label("total"),
            func.sum((deliveries.c.state == DeliveryState.SENT.value).cast(Integer)).label("sent"),
        )
        .group_by(deliveries.c.send_id)
        .subquery()
    )
    sends_of: dict[int, dict[Channel, ListedSend]] = {post_id: {} for post_id in ids}
    rows = conn.execute(
        select(
            sends.c.id,
            sends.c.post_id,
            sends.c.channel,
            sends.c.state,
            sends.c.scheduled_at,
            func.coalesce(counts.c.total, 0).label("total"),
            func.coalesce(counts.c.sent, 0).label("sent"),
        )
        .outerjoin(counts, counts.c.send_id == sends.c.id)
        .where(sends.c.post_id.in_(ids))
        .order_by(sends.c.id)
    )
    for row in rows:
        sends_of[row.post_id][Channel(row.channel)] = ListedSend(
            row.id,
            SendState(row.state),
            times.as_utc(row.scheduled_at),
            int(row.sent),
            int(row.total),
        )
    digested = dict(
        conn.execute(
            select(digest_posts.c.post_id, digest_posts.c.send_id).where(
                digest_posts.c.post_id.in_(ids)
            )
        ).all()
    )
    return [
        PostListing(
            id=row.id,
            guid=row.guid,
            title=row.title,
            link=row.link,
            published=times.as_utc(row.published),
            first_seen=times.as_utc(row.first_seen),
            eligible=bool(row.eligible),
            sends=sends_of[row.id],
            digest_send=digested.get(row.id),
        )
        for row in found
    ]
