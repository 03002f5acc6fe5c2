"""`syndicate status`: what was sent, what is waiting, who is subscribed, what came back."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from syndicate import store
from syndicate.cli.common import app, console, iso, open_store, settings_of
from syndicate.models import RecipientKind
from syndicate.watch import feed_source


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Show recent posts, sends with their delivery counts, recipients and replies."""
    settings = settings_of(ctx)
    engine = open_store(settings)
    with engine.connect() as conn:
        sends = store.list_sends(conn)
        recipients = store.count_recipients(conn)
        replies = store.count_replies(conn)
        state = store.get_feed_state(conn, feed_source(settings))
    data = {
        "feed": {
            "source": settings.feed.source,
            "checked_at": iso(state["checked_at"]) if state else None,
        },
        "recipients": recipients,
        "sends": [
            {
                "id": s["id"],
                "post": s["title"],
                "channel": s["channel"],
                "state": s["state"],
                "scheduled_at": iso(s["scheduled_at"]),
                "delivered": s["n_sent"],
                "pending": s["n_pending"] + s["n_sending"],
                "deferred": s["n_deferred"],
                "failed": s["n_failed"],
                "skipped": s["n_skipped"],
            }
            for s in sends
        ],
        "replies": replies,
    }
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    console.print(
        f"Feed: {settings.feed.source} (last checked {data['feed']['checked_at'] or 'never'})"
    )
    for kind in RecipientKind:
        counts = recipients.get(kind.value, {})
        shown = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
        console.print(f"{kind.value.capitalize()}s: {shown}")
    table = Table(title="Sends")
    for column in (
        "id",
        "post",
        "channel",
        "state",
        "scheduled",
        "delivered",
        "pending",
        "deferred",
        "failed",
    ):
        table.add_column(column)
    for s in data["sends"]:
        table.add_row(
            str(s["id"]),
            s["post"],
            s["channel"],
            s["state"],
            s["scheduled_at"] or "",
            str(s["delivered"]),
            str(s["pending"]),
            str(s["deferred"]),
            str(s["failed"]),
        )
    console.print(table)
    console.print("Replies: " + (", ".join(f"{n} {k}" for k, n in replies.items()) or "none yet"))
