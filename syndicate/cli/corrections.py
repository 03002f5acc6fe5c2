"""`syndicate corrections list|show|send|drop` and `syndicate kill POST --reason`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from syndicate.cli.common import app, console, iso, print_json, runtime_of
from syndicate.cli.lazy import lazy_module
from syndicate.cli.tables import new_table, print_table
from syndicate.scheduling.timeparse import short

if TYPE_CHECKING:
    from syndicate.corrections.rows import Correction

control = lazy_module("syndicate.corrections.control")
listing = lazy_module("syndicate.corrections.listing")

corrections_app = typer.Typer(
    help="Corrections and kills of columns editors already have.", no_args_is_help=True
)
app.add_typer(corrections_app, name="corrections")

CorrectionArg = Annotated[
    int, typer.Argument(help="The correction's id (see 'syndicate corrections list').")
]


def correction_json(c: Correction) -> dict[str, Any]:
    return {
        "id": c.id,
        "post_id": c.post_id,
        "post": c.title,
        "send_id": c.send_id,
        "action": c.action.value,
        "state": c.state.value,
        "origin": c.origin,
        "changes": c.summary,
        "details": list(c.details),
        "note": c.note,
        "reason": c.reason,
        "created_at": iso(c.created_at),
        "asked_at": iso(c.asked_at),
        "approved_at": iso(c.approved_at),
        "approved_by": c.approved_by,
        "sent_at": iso(c.sent_at),
        "advisory": c.advisory,
        "version": c.version,
    }


def what(c: Correction) -> str:
    return f"KILL ({c.reason})" if c.action.value == "kill" else c.summary


@corrections_app.command("list")
def list_corrections(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Corrections and kills, newest first: pending ones wait for 'send' or 'drop'."""
    rt = runtime_of(ctx)
    settings = rt.settings
    found = listing.listed(rt.engine)
    if as_json:
        print_json([correction_json(c) for c in found])
        return
    if not found:
        console.print("No corrections: edits of columns editors have appear here.")
        return
    table = new_table("Corrections", ("id", "post", "state", "what", "found"))
    for c in found:
        table.add_row(
            str(c.id), c.title, c.state.value, what(c), short(c.created_at, settings.zone)
        )
    print_table(table)


@corrections_app.command("show")
def show(ctx: typer.Context, correction: CorrectionArg) -> None:
    """What changed, word by word, and who got the advisory."""
    rt = runtime_of(ctx)
    settings = rt.settings
    c, deliveries = listing.show(rt.engine, correction)
    lines = [
        f"Correction {c.id} of “{c.title}” (post {c.post_id}): {c.state.value}",
        f"  found {short(c.created_at, settings.zone)}: {c.origin}",
        f"  {what(c)}",
        *(f"    {line}" for line in c.details),
    ]
    if c.note:
        lines.append(f"  note: {c.note}")
    if c.sent_at:
        lines.append(
            f"  sent {short(c.sent_at, settings.zone)} as {c.advisory.upper()} v{c.version} "
            f"to {len(deliveries)} editor(s):"
        )
        lines += [f"    {d['email']}: {d['state']}" for d in deliveries]
    elif c.open:
        lines.append(
            f"  'syndicate corrections send {c.id}' sends it; "
            f"'syndicate corrections drop {c.id}' leaves editors alone"
        )
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


@corrections_app.command("send")
def send(
    ctx: typer.Context,
    correction: CorrectionArg,
    note: Annotated[str, typer.Option(help="Your note to editors, in the Eds line.")] = "",
) -> None:
    """Send the advisory now to every editor who had the column and is still on the list."""
    _report(control.send(runtime_of(ctx), correction, note=note))


@corrections_app.command("drop")
def drop(ctx: typer.Context, correction: CorrectionArg) -> None:
    """Leave editors alone: the correction is closed, nothing is sent."""
    c = control.drop(runtime_of(ctx), correction)
    console.print(f"Correction {c.id} of “{c.title}” dropped; editors are not told.")


@app.command()
def kill(
    ctx: typer.Context,
    post: Annotated[str, typer.Argument(help="The post: id, guid or link (see 'posts list').")],
    reason: Annotated[str, typer.Option(help="Why, in the editors' Eds line.")] = "",
) -> None:
    """Withdraw a column: editors who had it are told not to publish it (KILL, urgent), and
    every send of it still to come is cancelled."""
    _report(control.kill(runtime_of(ctx), post, reason))


def _report(outcome: Any) -> None:
    if outcome.correction_id:
        console.print(
            f"Correction {outcome.correction_id}: {outcome.kind.upper()} sent to "
            f"{outcome.sent} editor(s)" + (f", {outcome.failed} not" if outcome.failed else ""),
            highlight=False,
        )
    else:
        console.print("No editor had this column; nothing to tell them.", highlight=False)
    for send_id in outcome.cancelled_sends:
        console.print(f"Send {send_id} cancelled.", highlight=False)
