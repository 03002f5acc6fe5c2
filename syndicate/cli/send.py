"""`syndicate send`: send one post to one channel now, with a progress bar; or a dry run or a
single test copy."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Annotated

import typer

from syndicate import db
from syndicate.cli.common import app, console, err, runtime_of
from syndicate.cli.lazy import lazy_module
from syndicate.cli.sending import (
    Interruption,
    interruptible,
    print_interrupted,
    send_progress,
    still_to_send,
)
from syndicate.errors import SyndicateError, no_such_post
from syndicate.models import (
    Channel,
    DeliveryState,
    Post,
    Recipient,
    SendState,
    SendSummary,
)

if TYPE_CHECKING:
    from syndicate.delivery.dispatch import Progress
    from syndicate.runtime import Runtime
    from syndicate.settings import Settings

compose = lazy_module("syndicate.delivery.compose")
dispatch = lazy_module("syndicate.delivery.dispatch")
mime = lazy_module("syndicate.delivery.mime")
render = lazy_module("syndicate.render")
jobs = lazy_module("syndicate.scheduling.jobs")
send_control = lazy_module("syndicate.scheduling.send_control")


@contextmanager
def _progress_bar(description: str, total: int, done: int) -> Iterator[Progress]:
    with send_progress() as bar:
        task = bar.add_task(description, total=max(total, done), completed=done)
        yield lambda n: bar.advance(task, n)


@app.command()
def send(
    ctx: typer.Context,
    post_ref: Annotated[
        str, typer.Argument(metavar="POST", help="Post id, guid, URL or 'latest'.")
    ],
    channel: Annotated[
        Channel, typer.Option(help="newsletter (readers) or column (editors).")
    ] = Channel.NEWSLETTER,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Render and count who would get it; send nothing."),
    ] = False,
    test: Annotated[
        str | None,
        typer.Option(
            "--test",
            metavar="ADDRESS",
            help="Send one copy, subject marked [TEST], to ADDRESS only; record nothing.",
        ),
    ] = None,
    break_embargo: Annotated[
        bool,
        typer.Option("--break-embargo", help="Send readers the post before its embargo (logged)."),
    ] = False,
) -> None:
    """Send a post to a channel's list now (resumes an interrupted send; never sends twice).

    Ctrl-C or SIGTERM finishes the batch in flight, records it and exits with status 130 or 143;
    the same command resumes."""
    rt = runtime_of(ctx)
    settings, engine = rt.settings, rt.engine
    jobs.sync_lists(rt)
    with engine.connect() as conn:
        post = db.posts.find_post(conn, post_ref)
    if post is None:
        raise no_such_post(post_ref)
    if test is not None:
        _send_test(rt, post, channel, test)
        return
    if dry_run:
        _dry_run(rt, post, channel)
        return
    if channel is Channel.NEWSLETTER and post.id is not None:
        send_control.guard_embargo(
            engine,
            post.id,
            rt.now(),
            respect_column=settings.channels.newsletter.respect_embargo,
            break_embargo=break_embargo,
            zone=settings.zone,
        )
    # On PostgreSQL sends join each other (and the daemon): claims are row locks with leases.
    # SQLite keeps one sending process per database: the lock.
    joins = engine.dialect.name == "postgresql"
    stop = threading.Event()  # SIGINT/SIGTERM, or the lock lost (SQLite's lock row taken over)
    held = nullcontext() if joins else rt.daemon_lock().held_while(stop=stop)
    with held, interruptible(stop) as interruption:
        summary = _send(rt, post, channel, interruption)
    if summary is None:
        return
    if interruption.signum:
        left = still_to_send(engine, [summary.send_id])
        print_interrupted(interruption, summary.sent, left)
        raise typer.Exit(interruption.exit_code)
    _print_summary(summary, settings)
    if summary.error:
        raise typer.Exit(1)


def _find_or_create_send(rt: Runtime, post: Post, channel: Channel) -> int:
    assert post.id is not None
    try:
        with rt.engine.begin() as conn:
            if channel is Channel.NEWSLETTER and db.sends.find_send(conn, post.id, channel) is None:
                send_control.take_out_of_digest(conn, post.id)  # or refuses: see its docstring
            created = db.sends.create_send(conn, post.id, channel, rt.now())
            if created is not None:
                return created
    except db.IntegrityError:
        pass  # another `send` created it a moment ago
    with rt.engine.connect() as conn:
        existing = db.sends.find_send(conn, post.id, channel)
        assert existing is not None
        return int(existing.id)


def _send(
    rt: Runtime, post: Post, channel: Channel, interruption: Interruption
) -> SendSummary | None:
    """Run the send with a progress bar; None when it was already done."""
    settings = rt.settings
    send_id = _find_or_create_send(rt, post, channel)
    with rt.engine.connect() as conn:
        state = db.sends.send_state(conn, send_id)
        counts = db.deliveries.delivery_counts(conn, send_id)
        audience = db.recipients.count_active(conn, channel.audience)
    if state == SendState.DONE.value:
        console.print(
            f"Send {send_id} ('{post.title}', {channel}) is already done; nobody gets it twice."
        )
        return None
    if state == SendState.CANCELLED.value:
        raise SyndicateError(f"send {send_id} ('{post.title}', {channel}) was cancelled")
    finished = sum(
        n
        for s, n in counts.items()
        if s not in (DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.DEFERRED)
    )
    with _progress_bar(f"send {send_id} {channel}", audience, finished) as progress:
        return dispatch.run_send(
            rt,
            send_id,
            rt.transport(),
            progress=progress,
            wait_for_retries=settings.transport.retry.wait_seconds,
            should_stop=interruption.stop.is_set,
        )


def _dry_run(rt: Runtime, post: Post, channel: Channel) -> None:
    settings = rt.settings
    with rt.engine.connect() as conn:
        audience = db.recipients.count_active(conn, channel.audience)
        done = 0
        assert post.id is not None
        existing = db.sends.find_send(conn, post.id, channel)
        if existing is not None:
            counts = db.deliveries.delivery_counts(conn, existing.id)
            done = sum(counts.get(s, 0) for s in (DeliveryState.SENT, DeliveryState.FAILED))
    sample = _sample(settings, channel)
    editions = render.EditionCache(post, channel, settings, rt.templates)
    composer = compose.Composer(editions, dispatch.make_sender(settings, rt.key), 0, rt.now())
    message = composer.message(0, sample)
    console.print(
        f"Dry run: '{post.title}' ({channel}) would go to {max(audience - done, 0):,} "
        f"{channel.audience.value}(s) via {settings.transport.kind}"
        + (f" ({done:,} already done)" if done else "")
        + f"; one message is {len(mime.as_bytes(message)):,} bytes. Nothing was sent or recorded."
    )


def _sample(settings: Settings, channel: Channel, address: str | None = None) -> Recipient:
    return Recipient(id=0, kind=channel.audience, email=address or settings.author.email, name="")


def _send_test(rt: Runtime, post: Post, channel: Channel, address: str) -> None:
    settings = rt.settings
    result = send_control.send_test_copy(rt, post, channel, address)
    console.print(
        f"Test copy of '{post.title}' ({channel}) sent to {address} via "
        f"{settings.transport.kind} ({result.detail}); no delivery recorded."
    )


def _print_summary(s: SendSummary, settings: Settings) -> None:
    if s.error:
        err.print(f"[red]send {s.send_id} ({s.channel}) not started:[/red] {s.error}")
        return
    console.print(
        f"Send {s.send_id} ({s.channel}) '{s.post_title}': {s.sent} sent, "
        f"{s.deferred} deferred, {s.failed} failed, {s.skipped} skipped in {s.seconds:.1f} s"
    )
    if s.deferred:
        console.print("Deferred messages are retried by the next 'syndicate run'.")
    if settings.transport.kind == "outbox" and s.sent:
        console.print(f"Messages written to {settings.path(settings.transport.outbox.path)}")
