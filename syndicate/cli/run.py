"""`syndicate run`: the daemon, or one pass of the pipeline with --once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress

from syndicate import db, settings_digest
from syndicate.cli.common import (
    DEFAULT_CONFIG,
    State,
    app,
    console,
    err,
    journal_logging,
    runtime_of,
)
from syndicate.cli.lazy import lazy_module
from syndicate.cli.plain import escaped
from syndicate.cli.sending import (
    interruptible,
    print_interrupted,
    send_progress,
    still_to_send,
)
from syndicate.models import Channel, SendState

if TYPE_CHECKING:
    from syndicate import settings as settings_module
    from syndicate.db import Engine
    from syndicate.runtime import Runtime
    from syndicate.scheduling.jobs import ProgressFactory

daemon = lazy_module("syndicate.scheduling.daemon")
jobs = lazy_module("syndicate.scheduling.jobs")


@app.command()
def run(
    ctx: typer.Context,
    once: Annotated[
        bool,
        typer.Option("--once", help="Sync lists, poll the feed, run what is due, then exit."),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="If another daemon uses the database, wait for it instead of exiting."
        ),
    ] = False,
) -> None:
    """Keep watching the feed and deliver each post when its policy says (--once: one pass).

    The daemon polls the feed every daemon.poll_minutes, starts due sends every minute and
    polls the inbox when inbound mail is configured. SIGTERM or Ctrl-C finishes the batch in
    flight, records it and stops (--once: exit status 143 or 130); the rest resumes at the
    next start.
    """
    state = ctx.find_root().obj
    config = state.config if isinstance(state, State) else DEFAULT_CONFIG
    # Taken before the settings are read: a file changed in between cannot match an asker's.
    digest = None if once else settings_digest.of(config)
    rt = runtime_of(ctx)
    settings = rt.settings
    engine = rt.engine
    if not once:
        _run_daemon(rt, wait, digest)
        return
    # Set by SIGINT/SIGTERM, or by the lock's heartbeat when this run loses the election.
    stop = threading.Event()
    with (
        rt.daemon_lock().held_while(wait=wait, stop=stop),
        interruptible(stop) as interruption,
        ExitStack() as stack,
    ):
        progress = stack.enter_context(send_progress())
        report = jobs.run_once(
            rt,
            progress_factory=_progress_factory(engine, progress),
            stop=interruption.stop,
        )
    if interruption.signum:
        sent = sum(s.sent for s in report.summaries)
        print_interrupted(interruption, sent, still_to_send(engine, _unfinished_sends(engine)))
        raise typer.Exit(interruption.exit_code)
    _print_run(report, settings)
    if (report.feed_error and not report.summaries) or any(s.error for s in report.summaries):
        raise typer.Exit(1)


def _run_daemon(rt: Runtime, wait: bool, digest: str | None) -> None:
    from syndicate.cli.status import answerer

    journal_logging()
    the_daemon = daemon.Daemon(rt, status=answerer(rt), settings_digest=digest)
    with interruptible(the_daemon.stop):
        the_daemon.serve(wait_for_lock=wait)


def _unfinished_sends(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return db.sends.ids_in_state(conn, SendState.SENDING)


def _progress_factory(engine: Engine, progress: Progress) -> ProgressFactory:
    def factory(send_id: int, channel: str) -> Callable[[int], None]:
        with engine.connect() as conn:
            kind = Channel(channel).audience
            total = db.recipients.count_active(conn, kind)
            done = sum(
                n
                for state, n in db.deliveries.delivery_counts(conn, send_id).items()
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
        err.print(f"[red]feed error:[/red] {escaped(report.feed_error)}")
    for digest in getattr(report, "digests", []):
        console.print(f"Digest send {digest} created.")
    if getattr(report, "previews", 0):
        console.print(
            f"{report.previews} preview(s) emailed to {settings.author.email} for approval."
        )
    for wait in getattr(report, "waiting", []):
        console.print(jobs.describe_wait(wait, settings) + ".", highlight=False)
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
