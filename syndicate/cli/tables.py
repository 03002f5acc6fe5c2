"""The tables the commands print: one look (rich's SIMPLE_HEAD box), titles that give up width
first, 120 columns when the output is piped, and every cell and title taken literally
(`cli.plain`: a reply's subject or a post's title is never rich markup or a control sequence)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from rich import box
from rich.console import Console
from rich.table import Table

from syndicate.cli import common, plain


def column_style(name: str) -> dict[str, Any]:
    """Titles give up width first (one line, cut with '…'); ids, states and times never wrap."""
    if name in ("post", "subject", "from"):
        return {"overflow": "fold", "max_width": 36, "min_width": 16}
    return {"no_wrap": True, "min_width": len(name)}


def new_table(title: str, columns: Iterable[str] = (), *, counts: Iterable[str] = ()) -> Table:
    """A table titled `title`, with `columns` styled by their names (`column_style`), then
    `counts`: numbers, right-aligned, never wrapped."""
    table = LiteralTable(
        title=plain.text(title, "table.title"), box=box.SIMPLE_HEAD, pad_edge=False
    )
    for column in columns:
        table.add_column(column, **column_style(column))
    for column in counts:
        table.add_column(column, justify="right", no_wrap=True)
    return table


class LiteralTable(Table):
    """A rich Table whose string cells are shown as they are (`plain.text`), never as markup."""

    def add_row(self, *renderables: Any, **options: Any) -> None:
        super().add_row(
            *(plain.text(cell) if isinstance(cell, str) else cell for cell in renderables),
            **options,
        )


def print_table(table: Table, console: Console | None = None) -> None:
    """Piped output (a log, a mail from cron) gets 120 columns instead of rich's 80."""
    console = console or common.console
    if console.is_terminal:
        console.print(table)
    else:
        # Made from `console`, not from this process's environment: the daemon prints for
        # another process's pipe (cli/by_daemon.py).
        Console(
            file=console.file,
            width=120,
            force_terminal=False,
            color_system=cast(Any, console.color_system),  # a name Console accepts
            no_color=console.no_color,
        ).print(table)
