"""What every command shares: the Typer app, consoles, global options and the settings."""

from __future__ import annotations

import logging
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
from rich.text import Text
from sqlalchemy.engine import Engine

from syndicate import settings as settings_module
from syndicate import store

app = typer.Typer(
    help="Turn a blog feed into a newsletter for readers and column drafts for editors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# soft_wrap: paths and messages stay on one line, whatever the terminal width.
console = Console(soft_wrap=True)
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


def settings_of(ctx: typer.Context) -> settings_module.Settings:
    state = ctx.find_root().obj
    return (state if isinstance(state, State) else State()).settings()


def open_store(settings: settings_module.Settings) -> Engine:
    return store.connect(settings.database_url)


def iso(value: Any) -> str | None:
    value = store.as_utc(value)
    return value.isoformat() if value else None


class RateColumn(ProgressColumn):
    """Messages per second, so a long send shows how fast it is going."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} msg/s" if speed else "- msg/s")


def send_progress() -> Progress:
    """The progress bar of every send: count, percent, rate, elapsed time and ETA."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
    )
