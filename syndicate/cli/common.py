"""What every command shares: the Typer app, consoles, global options and the settings."""

from __future__ import annotations

import logging
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
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

from syndicate import db
from syndicate.cli.lazy import lazy_module

if TYPE_CHECKING:
    from syndicate.db import Engine
    from syndicate.runtime import Runtime
    from syndicate.settings import Settings

settings_module = lazy_module("syndicate.settings")

# settings.DEFAULT_CONFIG, spelled out so that --help need not load the settings models (pydantic);
# tests/test_cli_startup.py checks the two agree.
DEFAULT_CONFIG = Path("settings.toml")

app = typer.Typer(
    help="Turn a blog feed into a newsletter for readers and column drafts for editors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain Click help: Rich's would eat "[inbound.wordpress]" as markup and print "<bool>"
    # after every flag.
    rich_markup_mode=None,
    context_settings={"max_content_width": 100},
)

# soft_wrap: paths and messages stay on one line, whatever the terminal width.
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@dataclass
class State:
    """Typer's context object: the global options, and the Runtime built from them on first use
    (`--help` and `init` never load the settings)."""

    config: Path = DEFAULT_CONFIG
    quiet: bool = False
    _runtime: Runtime | None = field(default=None, init=False, repr=False)

    def runtime(self) -> Runtime:
        if self._runtime is None:
            from syndicate.runtime import Runtime

            self._runtime = Runtime(settings_module.load(self.config))
        return self._runtime


# One story per command: the progress bar and the summary are the story; the INFO logs repeat
# them, so they show only with -v (and in the daemon's journal, see journal_logging).
_state = State()
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@app.callback()
def _options(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Path to settings.toml.", show_default=True)
    ] = DEFAULT_CONFIG,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            show_default=False,
            help="Show the log (-vv: every step).",
        ),
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar; only summaries and warnings.")
    ] = False,
) -> None:
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    _configure_logging(level)
    global _state
    _state = State(config=config, quiet=quiet)
    ctx.obj = _state


def _configure_logging(level: int) -> None:
    # A plain handler: one record, one line, never wrapped at 80 columns mid-number.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def journal_logging() -> None:
    """The daemon has no progress bar: its log is its story, INFO by default (not with -q)."""
    if not _state.quiet:
        logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))


def runtime_of(ctx: typer.Context) -> Runtime:
    """The command's Runtime: settings loaded, database and key opened when first asked for."""
    state = ctx.find_root().obj
    if not isinstance(state, State):
        state = ctx.find_root().obj = State()
    return state.runtime()


def settings_of(ctx: typer.Context) -> Settings:
    return runtime_of(ctx).settings


def iso(value: Any) -> str | None:
    value = db.as_utc(value)
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
        disable=_state.quiet,
    )


@dataclass
class Interruption:
    """The first SIGINT or SIGTERM a sending command received, if any: `stop` is set, and the
    batch in flight is finished and recorded before the command stops."""

    stop: threading.Event = field(default_factory=threading.Event)
    signum: int = 0

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a command a signal ended: 130, 143."""
        return 128 + self.signum


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def interruptible(stop: threading.Event | None = None) -> Iterator[Interruption]:
    """SIGINT (Ctrl-C) and SIGTERM set `stop` instead of killing the process; the same signal
    again kills it at once (what was sent is still journaled, see syndicate.delivery.journal)."""
    interruption = Interruption(stop) if stop is not None else Interruption()

    def request_stop(signum: int, _frame: object) -> None:
        if not interruption.signum:
            interruption.signum = signum
        err.print(
            f"{signal.Signals(signum).name}: finishing the batch in flight, then stopping "
            "(again to force)",
            highlight=False,
        )
        interruption.stop.set()
        signal.signal(signum, signal.SIG_DFL)

    previous = {signum: signal.signal(signum, request_stop) for signum in STOP_SIGNALS}
    try:
        yield interruption
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def still_to_send(engine: Engine, send_ids: list[int]) -> int:
    """Deliveries of these sends that are not finished (pending, claimed or deferred)."""
    unfinished = ("pending", "sending", "deferred")
    with engine.connect() as conn:
        return sum(
            n
            for send_id in send_ids
            for state, n in db.deliveries.delivery_counts(conn, send_id).items()
            if state in unfinished
        )


def print_interrupted(interruption: Interruption, sent: int, left: int) -> None:
    """The one line a sending command prints when a signal stopped it."""
    command = shlex.join(["syndicate", *sys.argv[1:]])
    console.print(
        f"Interrupted by {interruption.name}: the batch in flight was finished and recorded; "
        f"{sent:,} message(s) sent in this run, {left:,} still to send. "
        f"Run '{command}' to resume; nobody gets a message twice.",
        highlight=False,
        markup=False,
    )
