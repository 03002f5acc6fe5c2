"""`syndicate desk password` sets the password of the author's desk (syndicate/desk);
`syndicate desk unlock` clears the lock strangers' wrong passwords put on it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from syndicate.cli.common import app, console, runtime_of
from syndicate.errors import SyndicateError

desk_app = typer.Typer(help="The author's desk in the browser.", no_args_is_help=True)
app.add_typer(desk_app, name="desk")


@desk_app.command("password")
def password(
    ctx: typer.Context,
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the password from standard input (one line).")
    ] = False,
) -> None:
    """Set the desk's password (asked twice); every open desk session ends."""
    from syndicate.desk import auth, queries

    rt = runtime_of(ctx)
    settings = rt.settings
    if stdin:
        chosen = sys.stdin.readline().rstrip("\r\n")
    else:
        chosen = typer.prompt("New desk password", hide_input=True)
        again = typer.prompt("The same again", hide_input=True)
        if chosen != again:
            raise SyndicateError("the two passwords differ; nothing was changed")
    auth.check_new_password(chosen)
    queries.set_password(rt.engine, chosen)
    console.print(
        f"Desk password set; open {settings.mail.base_url.rstrip('/')}{settings.desk.path}/ "
        "(served by 'syndicate serve') and log in."
    )


@desk_app.command("unlock")
def unlock(ctx: typer.Context) -> None:
    """Clear the desk's login lock (wrong passwords from strangers) so anyone may try again."""
    from syndicate.desk import queries
    from syndicate.scheduling.timeparse import short

    rt = runtime_of(ctx)
    before = queries.unlock(rt.engine)
    until = before.refused_until(rt.now())
    if until is not None:
        console.print(
            f"The desk was locked until {short(until, rt.settings.zone)}; it is unlocked now.",
            highlight=False,
        )
    elif before.wrong:
        console.print(
            f"The desk was not locked; {before.wrong} recent wrong password(s) forgotten.",
            highlight=False,
        )
    else:
        console.print("The desk was not locked.")
