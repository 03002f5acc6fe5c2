"""The bounce-scoring rule, as in Mailman: each bounce adds points to its address's score, at
most once a day, and a score untouched for `stale_after_days` starts again from zero (a mailbox
that was full once a month ago does not count against the reader today)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from syndicate import db
from syndicate.db.bounces import BounceScore


@dataclass(frozen=True)
class Scored:
    score: float
    # False for a second bounce on the same day: recorded, not added.
    counted: bool


def next_score(
    previous: BounceScore | None, *, today: date, points: float, stale_after_days: int
) -> Scored:
    if previous is None:
        return Scored(points, True)
    last = previous.last_scored_on
    stale = last is None or (today - last).days >= stale_after_days
    counted = last != today
    return Scored((0.0 if stale else previous.score) + (points if counted else 0.0), counted)


def score_bounce(
    conn: db.Connection,
    email: str,
    *,
    temporary: bool,
    reply_id: int | None,
    points: float,
    stale_after_days: int,
    at: datetime,
) -> float:
    """Add one bounce to the address's score and record it; returns the new score."""
    scored = next_score(
        db.bounces.get_bounce_score(conn, email),
        today=at.date(),
        points=points,
        stale_after_days=stale_after_days,
    )
    db.bounces.save_bounce(
        conn,
        email,
        score=scored.score,
        counted=scored.counted,
        temporary=temporary,
        reply_id=reply_id,
        at=at,
    )
    return scored.score
