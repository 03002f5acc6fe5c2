"""The bounce-scoring rule alone (inbound/bounce_score.py): a pure function of the last score."""

from __future__ import annotations

from datetime import UTC, date, datetime

from syndicate.db.bounces import BounceScore
from syndicate.inbound.bounce_score import Scored, next_score

DAY = date(2026, 11, 20)


def scored(score: float, on: date | None) -> BounceScore:
    return BounceScore("a@example.org", score, on, datetime(2026, 11, 20, tzinfo=UTC), None)


def test_first_bounce_counts_its_points() -> None:
    assert next_score(None, today=DAY, points=1.0, stale_after_days=7) == Scored(1.0, True)


def test_a_second_bounce_the_same_day_is_recorded_not_added() -> None:
    assert next_score(scored(1.0, DAY), today=DAY, points=1.0, stale_after_days=7) == Scored(
        1.0, False
    )


def test_the_next_day_adds_and_a_stale_score_starts_again() -> None:
    nov = lambda d: date(2026, 11, d)  # noqa: E731
    assert next_score(scored(2.0, DAY), today=nov(21), points=0.5, stale_after_days=7) == Scored(
        2.5, True
    )
    # Six days later the score still stands; seven days later it starts from zero.
    assert next_score(scored(2.0, DAY), today=nov(26), points=1.0, stale_after_days=7).score == 3.0
    assert next_score(scored(2.0, DAY), today=nov(27), points=1.0, stale_after_days=7).score == 1.0
    # A score never counted (imported) is stale.
    assert next_score(scored(2.0, None), today=DAY, points=1.0, stale_after_days=7).score == 1.0
