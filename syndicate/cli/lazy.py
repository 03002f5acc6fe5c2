"""Loading on first use, so that `syndicate --help` and the MTA pipe do not pay for SQLAlchemy,
premailer, python-docx, feedparser and lxml they never touch (see bench/startup.py).

`lazy_module` defers a module; `LazyCommands` defers each command's module until that command
runs or shows its own help.
"""

from __future__ import annotations

import importlib
import threading
from difflib import get_close_matches
from types import ModuleType
from typing import TYPE_CHECKING, Any

# typer's own click (it vendors one); `typer.main` builds our commands with it.
from typer import _click as click
from typer._click.exceptions import UsageError
from typer._click.utils import make_default_short_help
from typer.core import TyperGroup

if TYPE_CHECKING:
    from syndicate.cli import Listed


def lazy_module(name: str) -> ModuleType:
    """A stand-in for the module `name` that imports it when one of its attributes is first
    read, set or deleted, and passes every such access on to the real module.

    A plain import under a lock, not importlib's LazyLoader: LazyLoader is not thread-safe before
    Python 3.12.3 (CPython gh-114763; a second thread found the module empty,
    tests/test_review_lazy_threads.py). The real module is the one `import name` gives, so
    monkeypatching through the stand-in patches the module every other importer sees.
    """
    return _Deferred(name)


class _Deferred(ModuleType):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        object.__setattr__(self, "_lazy_lock", threading.Lock())
        object.__setattr__(self, "_lazy_module", None)

    def _real(self) -> ModuleType:
        module: ModuleType | None = object.__getattribute__(self, "_lazy_module")
        if module is None:
            with object.__getattribute__(self, "_lazy_lock"):
                module = object.__getattribute__(self, "_lazy_module")
                if module is None:
                    module = importlib.import_module(self.__name__)
                    object.__setattr__(self, "_lazy_module", module)
        return module

    def __getattr__(self, attribute: str) -> Any:  # only for names the stand-in lacks
        return getattr(self._real(), attribute)

    def __setattr__(self, attribute: str, value: Any) -> None:
        setattr(self._real(), attribute, value)

    def __delattr__(self, attribute: str) -> None:
        delattr(self._real(), attribute)

    def __dir__(self) -> list[str]:
        return dir(self._real())


class LazyCommands(TyperGroup):
    """The root `syndicate` group: a command's module is imported only when that command runs or
    shows its own help, so `syndicate status` never imports the modules of `send` or `serve`.

    `syndicate --help` lists every command from `syndicate.cli.COMMANDS` without importing any
    of them; tests/test_cli_startup.py checks each line against the command's own short help.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_listing())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            listed = _listing().get(cmd_name)
            if listed is None:
                return None
            importlib.import_module(f"syndicate.cli.{listed.module}")
            self.commands[cmd_name] = _registered(cmd_name)
        return self.commands[cmd_name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listing = _listing()
        # What click does with each command's short help, with the table's line instead.
        limit = formatter.width - 6 - max(len(name) for name in listing)
        with formatter.section("Commands"):
            formatter.write_dl(
                [(name, make_default_short_help(c.help, limit)) for name, c in listing.items()]
            )

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as error:
            # "Did you mean …?" among every command, not only those loaded so far.
            matches = get_close_matches(args[0], list(_listing())) if args else []
            if matches and "Did you mean" not in error.message:
                suggestions = ", ".join(repr(m) for m in matches)
                error.message = f"{error.message.rstrip('.')}. Did you mean {suggestions}?"
            raise


def _listing() -> dict[str, Listed]:
    from syndicate.cli import COMMANDS

    return COMMANDS


def _registered(name: str) -> click.Command:
    """The click command typer makes of what the command's module registered on the app."""
    import typer.main

    from syndicate.cli.common import app

    short, markup = app.pretty_exceptions_short, app.rich_markup_mode
    for command in app.registered_commands:
        assert command.callback is not None
        if (command.name or typer.main.get_command_name(command.callback.__name__)) == name:
            return typer.main.get_command_from_info(
                command, pretty_exceptions_short=short, rich_markup_mode=markup
            )
    for group in app.registered_groups:
        if group.name == name:
            return typer.main.get_group_from_info(
                group,
                pretty_exceptions_short=short,
                rich_markup_mode=markup,
                suggest_commands=app.suggest_commands,
            )
    raise LookupError(f"syndicate.cli.COMMANDS lists {name!r} but no module registers it")
