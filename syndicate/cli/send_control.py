"""The author's send commands: sends list, schedule, hold, approve, cancel, reschedule.

Times are read in author.timezone and echoed back with zone, offset and UTC, so there is never
doubt about which instant was meant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from syndicate import db
from syndicate.cli import plain
from syndicate.cli.common import app, console, iso, print_json, runtime_of
from syndicate.cli.lazy import lazy_module
from syndicate.cli.tables import new_table, print_table
from syndicate.errors import SyndicateError
from syndicate.models import Channel, DeliveryState
from syndicate.scheduling.timeparse import TIME_HELP, describe, parse_future, short

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console

    from syndicate.db.sends import Send
    from syndicate.runtime import Runtime
    from syndicate.settings import Settings

control = lazy_module("syndicate.scheduling.send_control")
corrections = lazy_module("syndicate.corrections.listing")

sends_app = typer.Typer(help="List the sends (one per post and channel).", no_args_is_help=True)
app.add_typer(sends_app, name="sends")

SendArg = Annotated[int, typer.Argument(help="The send's id (see 'syndicate sends list').")]


def _when(rt: Runtime, text: str) -> Any:
    return parse_future(text, rt.settings.zone, rt.now())


def _until(rt: Runtime, text: str | None, at: Any) -> Any:
    """An --embargo is read from the send time: 'saturday 00:01' is the first Saturday 00:01
    after the send, '+2d' two days after it (as channels.column.embargo is)."""
    if text is None:
        return None
    return parse_future(text, rt.settings.zone, rt.now(), "embargo", read_from=at)


def waiting(conn: Any, rt: Runtime, rows: Sequence[Send]) -> dict[int, Any]:
    """The embargo each scheduled send will wait for beyond its own time, by send id."""
    return control.waiting(
        conn, rows, rt.now(), respect_column=rt.settings.channels.newsletter.respect_embargo
    )


def state_text(row: Send, waits: dict[int, Any]) -> str:
    return "waiting for embargo" if row.id in waits else row.state


def print_waits(
    rows: Sequence[Send],
    waits: dict[int, Any],
    settings: Settings,
    out: Console | None = None,
) -> None:
    """Under a table: until when each waiting send waits, and for whose embargo."""
    for row in rows:
        release = waits.get(row.id)
        if release is not None:
            (out or console).print(
                f"Send {row.id} ({row.channel}) is waiting for embargo until "
                f"{short(release.until, settings.zone)}: {release.whose}.",
                highlight=False,
            )


def send_json(send: Send, release: Any = None) -> dict[str, Any]:
    data = {
        "id": send.id,
        "post_id": send.post_id,
        "channel": send.channel,
        "state": send.state,
        "policy": send.policy or "",
        "scheduled_at": iso(send.scheduled_at),
        "embargo_until": iso(send.embargo_until),
        "started_at": iso(send.started_at),
        "finished_at": iso(send.finished_at),
        "approval_requested_at": iso(send.approval_requested_at),
        "approved_at": iso(send.approved_at),
        "approved_by": send.approved_by or "",
        "waiting_for_embargo_until": iso(release.until) if release else None,
        "embargo_broken_at": iso(send.embargo_broken_at),
    }
    from syndicate.db.sends import SendListing

    if isinstance(send, SendListing):
        data["post"] = send.title
        data.update(
            delivered=send.count(DeliveryState.SENT),
            pending=send.count(DeliveryState.PENDING, DeliveryState.SENDING),
            deferred=send.count(DeliveryState.DEFERRED),
            failed=send.count(DeliveryState.FAILED),
            skipped=send.count(DeliveryState.SKIPPED),
        )
    return data


def _echo(rt: Runtime, send: Send, verb: str, *, with_wait: bool = False) -> None:
    zone = rt.settings.zone
    lines = [
        f"Send {send.id} ({send.channel}) {verb}; state: {send.state}",
        f"  at {describe(db.as_utc(send.scheduled_at), zone)}",
    ]
    if send.embargo_until:
        lines.append(f"  embargo until {describe(db.as_utc(send.embargo_until), zone)}")
    if with_wait:
        with rt.engine.connect() as conn:
            release = waiting(conn, rt, [send]).get(send.id)
        if release is not None:
            lines.append(f"  readers wait for {release.explain(zone)}")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


@sends_app.command("list")
def list_sends(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
) -> None:
    """Every send with its state, times (in your time zone) and delivery counts."""
    rt = runtime_of(ctx)
    settings = rt.settings
    with rt.engine.connect() as conn:
        rows = db.sends.list_sends(conn, limit)
        waits = waiting(conn, rt, rows)
    data = [send_json(row, waits.get(row.id)) for row in rows]
    if as_json:
        print_json(data)
        return
    if not rows:
        console.print("No sends yet.")
        return
    embargoes = any(row.embargo_until for row in rows)
    table = new_table(
        f"Sends (times in {settings.author.timezone})",
        ["id", "post", "channel", "state", "scheduled"] + (["embargo"] if embargoes else []),
        counts=["sent/deferred/failed"],
    )
    zone = settings.zone
    for row in rows:
        cells = [
            str(row.id),
            row.title,
            row.channel,
            state_text(row, waits),
            short(db.as_utc(row.scheduled_at), zone),
        ]
        if embargoes:
            cells.append(short(db.as_utc(row.embargo_until), zone))
        cells.append(
            f"{row.count(DeliveryState.SENT)}/{row.count(DeliveryState.DEFERRED)}/{row.count(DeliveryState.FAILED)}"
        )
        table.add_row(*cells)
    print_table(table)
    print_waits(rows, waits, settings)
    for line in corrections.waiting_lines(rt.engine):
        console.print(plain.text(line + " ('syndicate corrections list')"))


@app.command()
def schedule(
    ctx: typer.Context,
    post: Annotated[str, typer.Argument(help="Post id, guid, link or 'latest'.")],
    channel: Annotated[
        Channel, typer.Option("--channel", help="newsletter (readers) or column (editors).")
    ],
    at: Annotated[str, typer.Option("--at", help=f"When. {TIME_HELP}.")],
    embargo: Annotated[
        str | None,
        typer.Option(
            "--embargo",
            help="Release time printed in the column, read from --at ('saturday 00:01': the "
            "first after the send); readers wait too.",
        ),
    ] = None,
) -> None:
    """Schedule a post for a channel at a time of your choosing (creates or moves its send)."""
    rt = runtime_of(ctx)
    settings = rt.settings
    engine = rt.engine
    with engine.connect() as conn:
        found = db.posts.find_post(conn, post)
    if found is None or found.id is None:
        raise SyndicateError(
            f"no post {post!r}; give a post id, its guid or link, or 'latest' "
            "('syndicate sends list' shows posts with sends)"
        )
    when = _when(rt, at)
    until = _until(rt, embargo, when)
    send, created = control.schedule(engine, found.id, channel, when, until, zone=settings.zone)
    _echo(rt, send, "created" if created else "rescheduled", with_wait=True)
    if send.state != "scheduled":
        console.print(
            f"  it is {send.state}: 'syndicate approve {send.id}' releases it",
            soft_wrap=True,
        )


@app.command()
def hold(ctx: typer.Context, send: SendArg) -> None:
    """Hold a send: it does not go out (one in progress stops after the current batch)."""
    rt = runtime_of(ctx)
    row, changed = control.hold(rt.engine, send)
    _echo(rt, row, "held" if changed else "was already held; nothing changed")
    console.print(
        f"  'syndicate approve {send}' releases it; 'syndicate cancel {send}' drops it",
        soft_wrap=True,
    )


@app.command()
def approve(ctx: typer.Context, send: SendArg) -> None:
    """Release a held or awaiting-approval send; it goes at its time, at once if that passed."""
    rt = runtime_of(ctx)
    settings = rt.settings
    engine = rt.engine
    control.refuse_past_embargo(engine, send, rt.now(), settings.zone)
    row, changed = control.approve(engine, send, by="command")
    _echo(rt, row, "approved" if changed else "was already approved", with_wait=True)


@app.command()
def cancel(ctx: typer.Context, send: SendArg) -> None:
    """Cancel a send for good; messages already delivered stay delivered."""
    rt = runtime_of(ctx)
    settings = rt.settings
    engine = rt.engine
    row, changed = control.cancel(engine, send)
    with engine.connect() as conn:
        counts = db.deliveries.delivery_counts(conn, send)
    if not changed:
        console.print(
            f"Send {send} ({row.channel}) was already cancelled on "
            f"{short(db.as_utc(row.finished_at), settings.zone)}; nothing changed "
            f"({counts.get(DeliveryState.SENT, 0)} message(s) had been delivered).",
            soft_wrap=True,
        )
        return
    console.print(
        f"Send {send} ({row.channel}) cancelled; {counts.get(DeliveryState.SENT, 0)} "
        f"message(s) had been delivered, {counts.get(DeliveryState.PENDING, 0)} will not be "
        "sent.",
        soft_wrap=True,
    )


@app.command()
def reschedule(
    ctx: typer.Context,
    send: SendArg,
    at: Annotated[str, typer.Option("--at", help=f"The new time. {TIME_HELP}.")],
    embargo: Annotated[
        str | None,
        typer.Option(
            "--embargo", help="A new embargo (release time), read from --at; readers wait too."
        ),
    ] = None,
) -> None:
    """Move a send that has not started to another time (and, with --embargo, its embargo)."""
    rt = runtime_of(ctx)
    settings = rt.settings
    engine = rt.engine
    when = _when(rt, at)
    until = _until(rt, embargo, when)
    row = control.reschedule(engine, send, when, until, zone=settings.zone)
    _echo(rt, row, "rescheduled", with_wait=True)
