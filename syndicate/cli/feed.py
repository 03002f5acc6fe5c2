"""`syndicate feed …`: look at a feed the way syndicate sees it, changing nothing."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from syndicate import feed
from syndicate.cli.common import app, console, settings_of
from syndicate.render.text import count_words, html_to_plain
from syndicate.watch import feed_source

feed_app = typer.Typer(help="Inspect the feed.", no_args_is_help=True)
app.add_typer(feed_app, name="feed")


@feed_app.command("check")
def feed_check(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="Feed URL or file; default: feed.source.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Fetch and parse a feed without changing anything; list its posts and problems."""
    if not source:
        settings = settings_of(ctx)
        source = feed_source(settings)
    fetched = feed.fetch(source)
    assert fetched.content is not None
    parsed = feed.parse(fetched.content, source)
    posts = [
        {
            "guid": p.guid,
            "title": p.title,
            "link": p.link,
            "published": p.published.isoformat() if p.published else None,
            "words": count_words(html_to_plain(p.content_html or p.summary_html, links=False)),
            "full_text": p.has_full_text,
        }
        for p in parsed.posts
    ]
    if as_json:
        print(
            json.dumps(
                {"title": parsed.title, "posts": posts, "problems": parsed.problems},
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    table = Table(title=f"{parsed.title or source}: {len(posts)} post(s)")
    for column in ("published", "title", "words", "guid"):
        table.add_column(column)
    for p in posts:
        table.add_row(p["published"] or "-", p["title"], str(p["words"]), p["guid"])
    console.print(table)
    for problem in parsed.problems:
        console.print(f"[yellow]problem:[/yellow] {problem}")
