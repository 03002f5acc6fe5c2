"""The `syndicate` command: thin; each command group lives in its own module here.

Every SyndicateError becomes one readable line on stderr and exit status 1.
"""

from __future__ import annotations

import sys

from rich.markup import escape

# Importing a command module registers its commands on `app`.
from syndicate.cli import (  # noqa: F401
    corrections,
    db,
    desk,
    feed,
    inbound,
    init,
    posts,
    preview,
    replies,
    run,
    send,
    sends,
    serve,
    status,
    subscribers,
    worker,
)
from syndicate.cli.common import app, err
from syndicate.errors import SyndicateError

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except SyndicateError as exc:
        # escape: a message naming [inbound.wordpress] must print the name, not eat it as markup
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
