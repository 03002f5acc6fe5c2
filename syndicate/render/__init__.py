"""Rendering: a Post becomes an Edition per channel, once, whatever the number of recipients."""

from __future__ import annotations

from datetime import datetime

from jinja2 import Environment

from syndicate.models import Channel, Edition, Post
from syndicate.render.column import render_column
from syndicate.render.email import render_newsletter
from syndicate.render.environment import make_environment
from syndicate.settings import Settings

__all__ = ["make_environment", "render_edition"]


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
