"""How the feed is doing, from its recorded checks: the one summary `syndicate status` prints
and the desk's home page shows (one function, so the two cannot disagree)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from syndicate import db
from syndicate.db import Engine
from syndicate.db.feed_checks import FeedCheck
from syndicate.scheduling.timeparse import short
from syndicate.settings import Settings

# A run of failures this long is "failing", not a passing hiccup.
FAILING_AFTER = 2


@dataclass(frozen=True)
class FeedHealth:
    source: str  # as settings.toml names it
    last_check: FeedCheck | None
    last_success: FeedCheck | None
    last_error: FeedCheck | None

    @property
    def failing(self) -> bool:
        """The newest checks failed, FAILING_AFTER or more of them in a row."""
        last = self.last_check
        return last is not None and last.failed and last.failures_in_row >= FAILING_AFTER

    @property
    def failing_since(self) -> datetime | None:
        return self.last_check.failing_since if self.failing and self.last_check else None

    def line(self, zone: ZoneInfo) -> str:
        """One line: last check, last success, last error with its time, and whether the feed
        has been failing for a while."""

        def at(value: datetime | None) -> str:
            return short(value, zone) if value else "never"

        last, success, error = self.last_check, self.last_success, self.last_error
        if last is None:
            return f"Feed: {self.source} (last checked never)."
        parts = [f"last checked {at(last.checked_at)}"]
        if last.failed or (success and success.id != last.id):
            parts.append(f"last success {at(success.checked_at if success else None)}")
        text = f"Feed: {self.source} ({'; '.join(parts)})."
        if error is not None:
            text += f" Last error {at(error.checked_at)}: {error.error}"
            text += "" if error.error.endswith(".") else "."
        if self.failing and last.failing_since is not None:
            text += (
                f" The feed has been failing since {at(last.failing_since)} "
                f"({last.failures_in_row} checks in a row)."
            )
        return text


def health(engine: Engine, settings: Settings) -> FeedHealth:
    from syndicate.feedwatch.watch import feed_source

    source = feed_source(settings)
    with engine.connect() as conn:
        return FeedHealth(
            source=settings.feed.source,
            last_check=db.feed_checks.latest(conn, source),
            last_success=db.feed_checks.latest_success(conn, source),
            last_error=db.feed_checks.latest_failure(conn, source),
        )
