"""The tables the commands print: one look (rich's SIMPLE_HEAD box), titles that give up width
first, and 120 columns when the output is piped."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from syndicate.cli import common


def column_style(name: str) -> dict[str, Any]:
    """Titles give up width first (one line, cut with '…'); ids, states and times never wrap."""
    if name in ("post", "subject", "from"):
        return {"overflow": "fold", "max_width": 36, "min_width": 16}
    return {"no_wrap": True, "min_width": len(name)}


def new_table(title: str, columns: Iterable[str] = (), *, counts: Iterable[str] = ()) -> Table:
    """A table titled `title`, with `columns` styled by their names (`column_style`), then
    `counts`: numbers, right-aligned, never wrapped."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        table.add_column(column, **column_style(column))
    for column in counts:
        table.add_column(column, justify="right", no_wrap=True)
    return table


def print_table(table: Table) -> None:
    """Piped output (a log, a mail from cron) gets 120 columns instead of rich's 80."""
    console = common.console
    if console.is_terminal:
        console.print(table)
    else:
        Console(file=console.file, width=120).print(table)
