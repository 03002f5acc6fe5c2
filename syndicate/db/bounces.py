"""Bounce scores per address and the events behind them. Reads and writes only: the rule that
turns a bounce into a score is syndicate/inbound/bounce_score.py's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from syndicate.db import times
from syndicate.db.schema import bounce_events, bounce_scores


@dataclass(frozen=True)
class BounceScore:
    email_key: str
    score: float
    # The day the score last grew (at most once a day); None if never.
    last_scored_on: date | None
    last_bounce_at: datetime
    suppressed_at: datetime | None


def address_key(email: str) -> str:
    return email.strip().lower()


def get_bounce_score(conn: Connection, email: str) -> BounceScore | None:
    row = conn.execute(
        select(bounce_scores).where(bounce_scores.c.email_key == address_key(email))
    ).first()
    if row is None:
        return None
    return BounceScore(
        email_key=row.email_key,
        score=float(row.score),
        last_scored_on=row.last_scored_on,
        last_bounce_at=times.as_utc(row.last_bounce_at),
        suppressed_at=times.as_utc(row.suppressed_at),
    )


def save_bounce(
    conn: Connection,
    email: str,
    *,
    score: float,
    counted: bool,
    temporary: bool,
    reply_id: int | None,
    at: datetime,
) -> None:
    """Store an address's new score and the bounce event that led to it; `counted` bounces also
    set the day the score last grew."""
    key = address_key(email)
    values: dict[str, object] = {"score": score, "last_bounce_at": at}
    if counted:
        values["last_scored_on"] = at.date()
    exists = conn.execute(
        select(bounce_scores.c.email_key).where(bounce_scores.c.email_key == key)
    ).first()
    if exists is None:
        conn.execute(insert(bounce_scores).values(email_key=key, **values))
    else:
        conn.execute(update(bounce_scores).where(bounce_scores.c.email_key == key).values(values))
    conn.execute(
        insert(bounce_events).values(
            email_key=key,
            reply_id=reply_id,
            temporary=temporary,
            counted=counted,
            score_after=score,
            at=at,
        )
    )


def mark_bounce_suppressed(conn: Connection, email: str) -> None:
    conn.execute(
        update(bounce_scores)
        .where(bounce_scores.c.email_key == address_key(email))
        .values(suppressed_at=func.coalesce(bounce_scores.c.suppressed_at, times.now()))
    )
