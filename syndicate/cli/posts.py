"""`syndicate posts list`: every post syndicate knows, its id, and where each channel stands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer

from syndicate import db
from syndicate.cli.common import app, console, iso, print_json, runtime_of
from syndicate.cli.tables import column_style, new_table, print_table
from syndicate.models import Channel, SendState
from syndicate.scheduling.timeparse import short

if TYPE_CHECKING:
    from syndicate.db.posts import PostListing

posts_app = typer.Typer(help="The posts read from the feed, with their ids.", no_args_is_help=True)
app.add_typer(posts_app, name="posts")

NO_SEND = "-"
BACK_CATALOGUE = "not sent (back catalogue)"


@posts_app.command("list")
def list_posts(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="At most this many, newest first; 0: all.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List posts, newest first: id (for preview, send, schedule), title, published, each
    channel's send state."""
    rt = runtime_of(ctx)
    settings = rt.settings
    with rt.engine.connect() as conn:
        rows = db.posts.list_posts_with_sends(conn, limit=limit or None)
    if as_json:
        print_json([_post_json(p) for p in rows])
        return
    if not rows:
        console.print("No posts yet: 'syndicate run --once' reads the feed.")
        return
    zone = settings.zone
    table = new_table(f"Posts (times in {settings.author.timezone})")
    table.add_column("id", justify="right", **column_style("id"))
    table.add_column("published", **column_style("published"))
    table.add_column("title", **column_style("post"))
    for channel in Channel:
        table.add_column(channel.value, **column_style(channel.value))
    for p in rows:
        table.add_row(
            str(p.id),
            short(p.published, zone) or "-",
            p.title,
            *(_channel_cell(p, channel, zone) for channel in Channel),
        )
    print_table(table)


def _channel_cell(post: PostListing, channel: Channel, zone: ZoneInfo) -> str:
    send = post.sends.get(channel)
    if send is None:
        if channel is Channel.NEWSLETTER and post.digest_send:
            return f"in digest (send {post.digest_send})"
        return NO_SEND if post.eligible else BACK_CATALOGUE
    if send.state in (SendState.SCHEDULED, SendState.HELD, SendState.AWAITING_APPROVAL):
        return f"send {send.id} {send.state} {short(send.scheduled_at, zone)}"
    return f"send {send.id} {send.state}: {send.sent}/{send.total} sent"


def _post_json(post: PostListing) -> dict[str, Any]:
    return {
        "id": post.id,
        "title": post.title,
        "published": iso(post.published),
        "link": post.link,
        "guid": post.guid,
        "back_catalogue": not post.eligible,
        "digest_send": post.digest_send,
        "channels": {
            channel.value: (
                {
                    "send": s.id,
                    "state": s.state,
                    "scheduled_at": iso(s.scheduled_at),
                    "sent": s.sent,
                    "deliveries": s.total,
                }
                if (s := post.sends.get(channel))
                else None
            )
            for channel in Channel
        },
    }
