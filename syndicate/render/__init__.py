"""Rendering: a Post becomes an Edition per channel, once, whatever the number of recipients."""

from __future__ import annotations

from datetime import datetime

from jinja2 import Environment

from syndicate.models import Channel, Edition, Post, Recipient
from syndicate.render.column import render_column
from syndicate.render.email import render_newsletter
from syndicate.render.environment import make_environment
from syndicate.settings import Settings

__all__ = ["EditionCache", "make_environment", "render_edition"]


def render_edition(
    post: Post,
    channel: Channel,
    settings: Settings,
    env: Environment,
    embargo: datetime | None = None,
) -> Edition:
    if channel is Channel.NEWSLETTER:
        return render_newsletter(post, settings, env)
    return render_column(post, settings, env, embargo)


class EditionCache:
    """Editions of one post and channel, rendered once per distinct recipient profile.

    Readers all share one edition. Editors may differ (time zone, quote style, formats), so the
    column edition is keyed by `profile_key`; with a handful of profiles it is still rendered a
    handful of times, never once per recipient.
    """

    def __init__(
        self,
        post: Post,
        channel: Channel,
        settings: Settings,
        env: Environment,
        embargo: datetime | None = None,
    ) -> None:
        self.post, self.channel, self.settings, self.env = post, channel, settings, env
        self.embargo = embargo
        self._cache: dict[tuple[str, ...], Edition] = {}

    def profile_key(self, recipient: Recipient | None) -> tuple[str, ...]:
        """What makes two recipients' editions differ; empty for readers."""
        return ()

    def for_recipient(self, recipient: Recipient | None = None) -> Edition:
        key = self.profile_key(recipient)
        if key not in self._cache:
            self._cache[key] = render_edition(
                self.post, self.channel, self.settings, self.env, self.embargo
            )
        return self._cache[key]
