"""Rendering: a Post becomes an Edition per channel, once, whatever the number of recipients."""

from __future__ import annotations

import logging
from datetime import datetime

from jinja2 import Environment

from syndicate.models import Channel, Edition, Post, Recipient
from syndicate.render.column import profile_defaults, render_column
from syndicate.render.editor_profile import EditorProfile, profile_of
from syndicate.render.email import render_newsletter
from syndicate.render.environment import make_environment
from syndicate.settings import Settings

__all__ = ["EditionCache", "make_environment", "render_edition"]

log = logging.getLogger(__name__)


def render_edition(
    post: Post,
    channel: Channel,
    settings: Settings,
    env: Environment,
    embargo: datetime | None = None,
    profile: EditorProfile | None = None,
) -> Edition:
    if channel is Channel.NEWSLETTER:
        return render_newsletter(post, settings, env)
    return render_column(post, settings, env, embargo, profile)


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
        self._reported: set[str] = set()

    def profile(self, recipient: Recipient | None) -> EditorProfile | None:
        """The editor's profile from their editors.csv row; None for readers."""
        if self.channel is not Channel.COLUMN:
            return None
        profile, problems = profile_of(recipient, profile_defaults(self.settings))
        for problem in problems:
            if problem not in self._reported:
                self._reported.add(problem)
                log.warning("%s", problem)
        return profile

    def profile_key(self, recipient: Recipient | None) -> tuple[str, ...]:
        """What makes two recipients' editions differ; empty for readers."""
        profile = self.profile(recipient)
        return profile.key() if profile else ()

    def for_recipient(self, recipient: Recipient | None = None) -> Edition:
        key = self.profile_key(recipient)
        if key not in self._cache:
            self._cache[key] = render_edition(
                self.post,
                self.channel,
                self.settings,
                self.env,
                self.embargo,
                self.profile(recipient),
            )
        return self._cache[key]
