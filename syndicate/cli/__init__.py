"""The `syndicate` command: thin; each command group lives in its own module here.

Every SyndicateError becomes one readable line on stderr and exit status 1. A command's module
is imported only when that command runs (`cli.lazy.LazyCommands`): COMMANDS says which module
registers each command, and holds the line `syndicate --help` shows for it.

`syndicate inbound receive` first tries to hand the message to the running daemon
(inbound/sources/handover.py) before Typer, pydantic or SQLAlchemy are imported: this package
imports none of them until the Typer app is asked for (`app`, `main`). `syndicate status` is
likewise first asked of the running daemon (cli/by_daemon.py).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from syndicate.errors import SyndicateError

if TYPE_CHECKING:
    import typer

__all__ = ["COMMANDS", "app", "main"]


@dataclass(frozen=True)
class Listed:
    """A top-level command as `syndicate --help` lists it: the module under syndicate/cli that
    registers it, and its one line of help (the first sentence of its docstring or group help)."""

    module: str
    help: str


# In the order `syndicate --help` lists them: set up, look, send, keep running, what came back.
COMMANDS: dict[str, Listed] = {
    "init": Listed(
        "init", "Create a project folder: settings.toml, templates/, subscribers/ (empty lists)."
    ),
    "feed": Listed("feed", "Inspect the feed."),
    "posts": Listed("posts", "The posts read from the feed, with their ids."),
    "preview": Listed(
        "preview",
        "Render a post as a recipient would receive it, without sending or recording anything.",
    ),
    "send": Listed(
        "send",
        "Send a post to a channel's list now (resumes an interrupted send; never sends twice).",
    ),
    "sends": Listed("send_control", "List the sends (one per post and channel)."),
    "schedule": Listed(
        "send_control",
        "Schedule a post for a channel at a time of your choosing (creates or moves its send).",
    ),
    "hold": Listed(
        "send_control",
        "Hold a send: it does not go out (one in progress stops after the current batch).",
    ),
    "approve": Listed(
        "send_control",
        "Release a held or awaiting-approval send; it goes at its time, at once if that passed.",
    ),
    "cancel": Listed(
        "send_control", "Cancel a send for good; messages already delivered stay delivered."
    ),
    "reschedule": Listed(
        "send_control",
        "Move a send that has not started to another time (and, with --embargo, its embargo).",
    ),
    "status": Listed(
        "status",
        "Show upcoming sends, recent sends with delivery counts, recipients and new replies.",
    ),
    "run": Listed(
        "run",
        "Keep watching the feed and deliver each post when its policy says (--once: one pass).",
    ),
    "worker": Listed(
        "worker",
        "Send whatever is going out, side by side with other workers (PostgreSQL only).",
    ),
    "serve": Listed(
        "serve", "Run the subscribe/unsubscribe web app; put it behind https at mail.base_url."
    ),
    "subscribers": Listed(
        "subscribers", "Readers and editors: sync the lists, import exports, export, list."
    ),
    "inbound": Listed("inbound", "Replies by email: receive, poll and classify inbound messages."),
    "replies": Listed("replies", "Comments, editors' answers and everything else that came back."),
    "corrections": Listed("corrections", "Corrections and kills of columns editors already have."),
    "kill": Listed(
        "corrections",
        "Withdraw a column: editors who had it are told not to publish it (KILL, urgent), and "
        "every send of it still to come is cancelled.",
    ),
    "desk": Listed("desk", "The author's desk in the browser."),
    "db": Listed("db", "The database schema: upgrade it, or show its revision."),
}


def __getattr__(name: str) -> typer.Typer:
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from syndicate.cli.common import app

    return app


def main() -> None:
    if "receive" in sys.argv:
        from syndicate.inbound.sources import handover

        code = handover.main(sys.argv[1:], sys.stdin.buffer, sys.stderr)
        if code is not None:
            sys.exit(code)
    if "status" in sys.argv:
        from syndicate.cli import by_daemon

        code = by_daemon.main(sys.argv[1:], sys.stdout, sys.stderr)
        if code is not None:
            sys.exit(code)
    from syndicate.cli.common import app

    try:
        app()
    except SyndicateError as exc:
        from rich.markup import escape

        from syndicate.cli.common import err

        # escape: a message naming [inbound.wordpress] must print the name, not eat it as markup
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
