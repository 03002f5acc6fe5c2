"""The `syndicate` command: parses arguments, calls the pipeline modules, prints results.

Every SyndicateError becomes one readable line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import Engine

from syndicate import feed, store
from syndicate import settings as settings_module
from syndicate.compose import compose
from syndicate.dispatch import make_sender
from syndicate.errors import NotFoundError, SyndicateError
from syndicate.models import Channel, Recipient, RecipientKind
from syndicate.render import make_environment, render_edition
from syndicate.render.text import count_words, html_to_plain
from syndicate.scheduler import ProgressFactory, run_once
from syndicate.watch import feed_source

app = typer.Typer(
    help="Turn a blog feed into a newsletter for readers and column drafts for editors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
feed_app = typer.Typer(help="Inspect the feed.", no_args_is_help=True)
app.add_typer(feed_app, name="feed")

console = Console()
err = Console(stderr=True)


@dataclass
class State:
    config: Path = settings_module.DEFAULT_CONFIG

    def settings(self) -> settings_module.Settings:
        return settings_module.load(self.config)


@app.callback()
def _options(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Path to settings.toml.", show_default=True)
    ] = settings_module.DEFAULT_CONFIG,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only log warnings and errors.")
    ] = False,
) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=err, show_path=False, markup=False)],
        force=True,
    )
    ctx.obj = State(config=config)


def _state(ctx: typer.Context) -> State:
    return ctx.obj if isinstance(ctx.obj, State) else State()


@app.command()
def run(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Sync lists, poll the feed, run due sends, then exit.")
    ] = False,
) -> None:
    """Watch the feed and deliver new posts (use --once from cron or to try it out)."""
    if not once:
        raise SyndicateError(
            "the long-running daemon is not available yet; run 'syndicate run --once' "
            "(for example from cron every 15 minutes)"
        )
    settings = _state(ctx).settings()
    engine = store.connect(settings.database_url)
    with ExitStack() as stack:
        progress = stack.enter_context(_progress())
        report = run_once(engine, settings, progress_factory=_progress_factory(engine, progress))
    _print_run(report, settings)
    if (report.feed_error and not report.summaries) or any(s.error for s in report.summaries):
        raise typer.Exit(1)


class RateColumn(ProgressColumn):
    """Messages per second, so a long send shows how fast it is going."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} msg/s" if speed else "- msg/s")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def _progress_factory(engine: Engine, progress: Progress) -> ProgressFactory:
    def factory(send_id: int, channel: str) -> Callable[[int], None]:
        with engine.connect() as conn:
            kind = Channel(channel).audience
            total = store.count_recipients(conn).get(kind.value, {}).get("active", 0)
            done = sum(
                n
                for state, n in store.delivery_counts(conn, send_id).items()
                if state not in ("pending", "sending", "deferred")
            )
        task = progress.add_task(
            f"send {send_id} {channel}", total=max(total, done), completed=done
        )
        return lambda n: progress.advance(task, n)

    return factory


def _print_run(report: Any, settings: settings_module.Settings) -> None:
    poll = report.poll
    if poll is not None:
        if poll.not_modified:
            console.print("Feed unchanged since the last check.")
        elif poll.first_run:
            console.print(
                f"First run: {len(poll.new_posts)} post(s) in the feed; "
                f"{len(poll.eligible)} scheduled to send "
                f"(feed.first_run = '{settings.feed.first_run}'), "
                "the rest recorded as already published."
            )
        else:
            console.print(f"{len(poll.new_posts)} new post(s) in the feed.")
    if report.feed_error:
        err.print(f"[red]feed error:[/red] {report.feed_error}")
    if not report.summaries:
        console.print("Nothing to send.")
    for s in report.summaries:
        if s.error:
            err.print(f"[red]send {s.send_id} ({s.channel}) not started:[/red] {s.error}")
            continue
        console.print(
            f"Send {s.send_id} ({s.channel}) '{s.post_title}': {s.sent} sent, "
            f"{s.deferred} deferred, {s.failed} failed, {s.skipped} skipped in {s.seconds:.1f} s"
        )
    if settings.transport.kind == "outbox" and any(s.sent for s in report.summaries):
        console.print(f"Messages written to {settings.path(settings.transport.outbox.path)}")


@feed_app.command("check")
def feed_check(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="Feed URL or file; default: feed.source.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Fetch and parse a feed without changing anything; list its posts and problems."""
    if not source:
        settings = _state(ctx).settings()
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


@app.command()
def preview(
    ctx: typer.Context,
    post_ref: Annotated[
        str, typer.Argument(metavar="POST", help="Post id, guid, URL or 'latest'.")
    ],
    channel: Annotated[Channel, typer.Option(help="Which edition to render.")] = Channel.NEWSLETTER,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here (.eml, .html or .txt by suffix).")
    ] = None,
) -> None:
    """Render a post as a recipient would receive it, without sending or recording anything."""
    settings = _state(ctx).settings()
    engine = store.connect(settings.database_url)
    with engine.connect() as conn:
        post = store.find_post(conn, post_ref)
    if post is None:
        raise NotFoundError(
            f"no post {post_ref!r} in the database; run 'syndicate run --once' to read the feed, "
            "or use 'latest'"
        )
    env = make_environment(settings.path(settings.paths.templates))
    edition = render_edition(post, channel, settings, env)
    sample = Recipient(
        id=0,
        kind=channel.audience,
        email=settings.author.email,
        name=settings.author.name,
    )
    key = store.hmac_key(engine, settings.hmac_key_from_env())
    message = compose(edition, sample, 0, make_sender(settings, key), store.now())
    suffix = out.suffix.lower() if out else ".txt"
    if suffix == ".eml":
        data = message.as_bytes()
    elif suffix in (".html", ".htm"):
        body = message.get_body(("html",))
        data = body.get_content().encode() if body else b""
    else:
        body = message.get_body(("plain",))
        data = body.get_content().encode() if body else b""
    if out is None:
        sys.stdout.write(data.decode())
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    console.print(f"Wrote {out} ({len(data):,} bytes)")


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Show recent posts, sends with their delivery counts, recipients and replies."""
    settings = _state(ctx).settings()
    engine = store.connect(settings.database_url)
    with engine.connect() as conn:
        sends = store.list_sends(conn)
        recipients = store.count_recipients(conn)
        replies = store.count_replies(conn)
        state = store.get_feed_state(conn, feed_source(settings))
    data = {
        "feed": {
            "source": settings.feed.source,
            "checked_at": _iso(state["checked_at"]) if state else None,
        },
        "recipients": recipients,
        "sends": [
            {
                "id": s["id"],
                "post": s["title"],
                "channel": s["channel"],
                "state": s["state"],
                "scheduled_at": _iso(s["scheduled_at"]),
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


def _iso(value: Any) -> str | None:
    value = store.as_utc(value)
    return value.isoformat() if value else None


def main() -> None:
    """Entry point: run the app and turn known errors into one line and exit status 1."""
    try:
        app()
    except SyndicateError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
