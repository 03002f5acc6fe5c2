"""`syndicate feed …`: look at a feed the way syndicate sees it, changing nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from syndicate.cli.common import DEFAULT_CONFIG, State, app, console, print_json, runtime_of
from syndicate.cli.tables import column_style, new_table, print_table

if TYPE_CHECKING:
    from syndicate.settings import Feed

feed_app = typer.Typer(help="Inspect the feed.", no_args_is_help=True)
app.add_typer(feed_app, name="feed")


@feed_app.command("check")
def feed_check(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="Feed URL or file; default: feed.source.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Fetch and parse a feed without changing anything; list its posts and problems.

    Uses [feed] of settings.toml (timeout, size cap, User-Agent) when there is one; the word
    count is the column draft's (body only, not captions).
    """
    from syndicate.feedwatch import feed
    from syndicate.render.column_text import body_word_count
    from syndicate.render.sanitize import sanitize

    config = _feed_settings(ctx, source)
    source = source or config.source
    fetched = feed.fetch(
        source,
        timeout=config.timeout_seconds,
        max_bytes=config.max_bytes,
        user_agent=config.user_agent,
    )
    assert fetched.content is not None
    parsed = feed.parse(fetched.content, source)
    posts: list[dict[str, Any]] = [
        {
            "guid": p.guid,
            "title": p.title,
            "link": p.link,
            "published": p.published.isoformat() if p.published else None,
            "words": body_word_count(
                sanitize(p.content_html if p.has_full_text else p.summary_html, p.link)
            ),
            "full_text": p.has_full_text,
        }
        for p in parsed.posts
    ]
    if as_json:
        print_json({"title": parsed.title, "posts": posts, "problems": parsed.problems})
        return
    table = new_table(f"{parsed.title or source}: {len(posts)} post(s)", ("published",))
    table.add_column("title", **column_style("post"))
    table.add_column("words", justify="right", **column_style("words"))
    table.add_column("guid", overflow="fold")
    for p in posts:
        table.add_row(p["published"] or "-", p["title"], str(p["words"]), p["guid"])
    print_table(table)
    for problem in parsed.problems:
        console.print(f"[yellow]problem:[/yellow] {problem}")


def _feed_settings(ctx: typer.Context, source: str) -> Feed:
    """[feed] with its source resolved; a feed named on the command line needs no settings."""
    from syndicate.feedwatch.watch import feed_source
    from syndicate.settings import Feed

    state = ctx.find_root().obj
    config = state.config if isinstance(state, State) else DEFAULT_CONFIG
    if source and not config.exists():
        return Feed(source=source)
    settings = runtime_of(ctx).settings
    return settings.feed.model_copy(update={"source": feed_source(settings)})
