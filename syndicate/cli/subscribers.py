"""`syndicate subscribers …`: sync the author's lists, import other tools' exports, export, list."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from syndicate import db
from syndicate.cli import plain
from syndicate.cli.common import app, console, err, iso, print_json, runtime_of
from syndicate.cli.lazy import lazy_module
from syndicate.cli.tables import LiteralTable
from syndicate.errors import SyndicateError
from syndicate.models import RecipientKind

if TYPE_CHECKING:
    from syndicate.audience.subscribers import MergeReport

subscribers = lazy_module("syndicate.audience.subscribers")

subscribers_app = typer.Typer(
    help="Readers and editors: sync the lists, import exports, export, list.",
    no_args_is_help=True,
)
app.add_typer(subscribers_app, name="subscribers")


def _print_report(label: str, report: MergeReport, as_json: bool) -> None:
    if as_json:
        print_json({"file": label, **report.as_dict()})
        return
    verb = "would be" if report.dry_run else "were"
    shape = f"{report.tool} export, " if report.tool != "csv" else ""
    console.print(
        f"{label}: {shape}{report.encoding or 'utf-8'}, delimiter {report.delimiter!r}",
        highlight=False,
    )
    console.print(
        f"  {report.added} new subscriber(s) {verb} added"
        f", {report.added_suppressed} added as already unsubscribed/bounced"
        f", {report.updated} updated, {report.unchanged} unchanged"
        f", {report.newly_suppressed} unsubscribed as in the source"
        f", {report.kept_suppressed} kept unsubscribed/bounced (the file does not bring them back)",
        highlight=False,
    )
    for problem in report.problems:
        console.print(
            f"  [red]line {problem.line}:[/red] {escape(problem.message)}", highlight=False
        )
    for note in [*report.skipped, *report.differences]:
        console.print(
            f"  [yellow]line {note.line}:[/yellow] {escape(note.message)}", highlight=False
        )
    if report.dry_run:
        console.print("  dry run: nothing was written")


@subscribers_app.command("sync")
def sync_command(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Merge subscribers/readers.csv and editors.csv into the database (also done every run)."""
    rt = runtime_of(ctx)
    settings = rt.settings
    engine = rt.engine
    documents = []
    for kind, relative in (
        (RecipientKind.READER, settings.subscribers.readers),
        (RecipientKind.EDITOR, settings.subscribers.editors),
    ):
        report = subscribers.sync(
            engine, settings.path(relative), kind, dry_run=dry_run, force=True
        )
        if as_json:
            documents.append({"file": relative, "kind": kind.value, **report.as_dict()})
        else:
            _print_report(relative, report, as_json=False)
    if as_json:  # one document for both lists, so `| jq` reads it
        print_json({"lists": documents})


@subscribers_app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV export from Mailchimp, Substack, Ghost, Buttondown, WordPress/Jetpack, "
            "or any CSV with an 'email' column."
        ),
    ],
    kind: Annotated[
        RecipientKind, typer.Option("--kind", help="Who these people are.")
    ] = RecipientKind.READER,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would happen; write nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Import subscribers; bad rows are listed by line number, good rows still land.

    People the source marks unsubscribed or bounced are imported that way and never mailed;
    people already unsubscribed here stay unsubscribed.
    """
    if not file.is_file():
        raise SyndicateError(f"{file}: no such file")
    rt = runtime_of(ctx)
    engine = rt.engine
    try:
        report = subscribers.import_file(engine, file, kind, dry_run=dry_run)
    except subscribers.ImportFormatError as exc:
        raise SyndicateError(f"{file}: {exc}") from None
    _print_report(str(file), report, as_json)


@subscribers_app.command("export")
def export_command(
    ctx: typer.Context,
    kind: Annotated[
        RecipientKind | None, typer.Option("--kind", help="Only readers or only editors.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file.")] = None,
) -> None:
    """Every subscriber with status and history as CSV (stdout unless --out)."""
    engine = runtime_of(ctx).engine
    text = subscribers.export_csv(engine, kind)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        err.print(f"wrote {text.count(chr(10)) - 1} subscriber(s) to {out}")


@subscribers_app.command("list")
def list_command(
    ctx: typer.Context,
    kind: Annotated[
        RecipientKind | None, typer.Option("--kind", help="Only readers or only editors.")
    ] = None,
    status: Annotated[
        str, typer.Option("--status", help="Only this status (active, unsubscribed, bounced …).")
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List subscribers and their status."""
    engine = runtime_of(ctx).engine
    with engine.connect() as conn:
        rows = db.recipients.list_recipients(conn, kind)
    if status:
        rows = [r for r in rows if r.status == status]
    data = [
        {
            "id": r.id,
            "kind": r.kind,
            "email": r.email,
            "name": r.name,
            "status": r.status,
            "source": r.source,
            "confirmed_at": iso(r.confirmed_at),
            "unsubscribed_at": iso(r.unsubscribed_at),
            "unsubscribe_reason": r.unsubscribe_reason,
        }
        for r in rows
    ]
    if as_json:
        print_json(data)
        return
    lines = [
        (
            r.kind.value,
            r.email,
            r.name,
            r.status.value,
            r.source,
            r.unsubscribe_reason if not r.active else iso(r.confirmed_at) or "",
        )
        for r in rows
    ]
    if not console.is_terminal:  # piped: one tab-separated line per person, for grep and cut
        for line in lines:
            print(plain.plain("\t".join(line)))
        return
    table = LiteralTable(title=f"{len(data)} subscriber(s)")
    for column in ("kind", "email", "name", "status", "source", "confirmed / reason"):
        table.add_column(column, no_wrap=column == "email")
    for line in lines:
        table.add_row(*line)
    console.print(table)


def _set_status(
    ctx: typer.Context, addresses: list[str], kind: RecipientKind, active: bool, dry_run: bool
) -> None:
    engine = runtime_of(ctx).engine
    word = "resubscribed" if active else "unsubscribed"
    missing = 0
    for address in addresses:
        shown = plain.plain(address)
        with engine.connect() as conn:
            same = db.recipients.recipients_by_email(conn, address)
        row = next((r for r in same if r.kind is kind), None)
        if row is None:
            err.print(f"no {kind.value} {escape(shown)}: nothing changed", highlight=False)
            missing += 1
            continue
        if row.active == active:
            console.print(f"{escape(row.email)}: already {row.status.value}", highlight=False)
            continue
        if dry_run:
            console.print(
                f"{escape(row.email)}: would be {word} (now {row.status.value})", highlight=False
            )
            continue
        try:
            subscribers.set_status_by_author(engine, row.id, active, where="from the command line")
        except SyndicateError as exc:
            err.print(f"{escape(str(exc))}: nothing changed", highlight=False)
            missing += 1
            continue
        console.print(f"{escape(row.email)}: {word} (was {row.status.value})", highlight=False)
    if dry_run:
        console.print("dry run: nothing was written")
    if missing:
        raise typer.Exit(1)


_ADDRESSES = typer.Argument(help="One or more addresses, as on the list (any case).")
_KIND = typer.Option("--kind", help="Readers or editors.")
_DRY_RUN = typer.Option("--dry-run", help="Show what would change; write nothing.")


@subscribers_app.command("unsubscribe")
def unsubscribe_command(
    ctx: typer.Context,
    addresses: Annotated[list[str], _ADDRESSES],
    kind: Annotated[RecipientKind, _KIND] = RecipientKind.READER,
    dry_run: Annotated[bool, _DRY_RUN] = False,
) -> None:
    """Stop mailing these people, recorded in their history as the author's doing.

    The lists do not bring them back; `resubscribe` or their own opt-in does.
    """
    _set_status(ctx, addresses, kind, active=False, dry_run=dry_run)


@subscribers_app.command("resubscribe")
def resubscribe_command(
    ctx: typer.Context,
    addresses: Annotated[list[str], _ADDRESSES],
    kind: Annotated[RecipientKind, _KIND] = RecipientKind.READER,
    dry_run: Annotated[bool, _DRY_RUN] = False,
) -> None:
    """Mail these people again (after an unsubscribe or a bounce), recorded in their history.

    Someone who reported a newsletter as spam is not re-added: they can subscribe again themselves.
    """
    _set_status(ctx, addresses, kind, active=True, dry_run=dry_run)
