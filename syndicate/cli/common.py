"""What every command shares: the Typer app, consoles, global options and the settings."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from syndicate import db
from syndicate.cli.lazy import LazyCommands, lazy_module

if TYPE_CHECKING:
    from rich.console import Console

    from syndicate.runtime import Runtime
    from syndicate.settings import Settings

settings_module = lazy_module("syndicate.settings")

# settings.DEFAULT_CONFIG, spelled out so that --help need not load the settings models (pydantic);
# tests/test_cli_startup.py checks the two agree.
DEFAULT_CONFIG = Path("settings.toml")

app = typer.Typer(
    cls=LazyCommands,
    help="Turn a blog feed into a newsletter for readers and column drafts for editors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain Click help: Rich's would eat "[inbound.wordpress]" as markup and print "<bool>"
    # after every flag.
    rich_markup_mode=None,
    context_settings={"max_content_width": 100},
)

if TYPE_CHECKING:
    console: Console
    err: Console


def __getattr__(name: str) -> Console:
    """`console` (stdout) and `err` (stderr), made when a command first asks for one: importing
    rich costs ~30 ms (python -X importtime), which `--help` and the MTA pipe do without."""
    if name not in ("console", "err"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rich.console import Console

    # soft_wrap: paths and messages stay on one line, whatever the terminal width.
    made = globals()[name] = Console(stderr=name == "err", soft_wrap=True)
    return made


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


def quiet() -> bool:
    """-q: no progress bar, only summaries and warnings."""
    return _state.quiet


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


def print_json(data: Any) -> None:
    """What --json prints: indented, non-ASCII as is (a script reads it as UTF-8), but DEL, C1
    controls and bidirectional overrides written as \\u escapes: the value a script reads is
    unchanged, and the terminal it is printed on is not driven by a stranger's text (json
    already escapes C0 controls)."""
    print(json_text(data))


def json_text(data: Any) -> str:
    """The text `print_json` prints."""
    from syndicate.cli.plain import JSON_UNSAFE

    text = json.dumps(data, ensure_ascii=False, indent=2)
    return JSON_UNSAFE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def iso(value: Any) -> str | None:
    value = db.as_utc(value)
    return value.isoformat() if value else None
