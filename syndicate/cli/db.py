"""`syndicate db upgrade` and `syndicate db current`: the schema's Alembic revision.

Every command upgrades the database when it opens it; these say so explicitly, for a deploy
script that migrates before starting workers, or a person checking what a database holds.
"""

from __future__ import annotations

import typer

from syndicate import db
from syndicate.cli.common import app, console, settings_of

db_app = typer.Typer(
    help="The database schema: upgrade it, or show its revision.", no_args_is_help=True
)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Bring the database schema to the newest revision (every command does this on start)."""
    engine = db.connect(settings_of(ctx).database_url, upgrade=False)
    try:
        before = db.migrate.upgrade(engine)
    finally:
        engine.dispose()
    if before == db.migrate.HEAD:
        console.print(f"The database is at revision {before}, the newest: nothing to do.")
    else:
        console.print(
            f"Upgraded the database from {_name(before)} to revision {db.migrate.HEAD}.",
            highlight=False,
        )


@db_app.command("current")
def current(ctx: typer.Context) -> None:
    """Print the database's schema revision, and whether it is the newest (changes nothing)."""
    url = settings_of(ctx).database_url
    missing = db.engine.missing_file(url)
    if missing is not None:
        console.print(
            f"no database yet ({missing} does not exist): 'syndicate db upgrade' (or any "
            "command) creates it",
            highlight=False,
        )
        return
    engine = db.connect(url, upgrade=False)
    try:
        with engine.connect() as conn:
            found = db.migrate.current(conn)
            db.migrate.check_known(conn, found)
    finally:
        engine.dispose()
    if found == db.migrate.HEAD:
        console.print(f"{found} (the newest)", highlight=False)
    else:
        console.print(
            f"{_name(found)}; the newest is {db.migrate.HEAD}: 'syndicate db upgrade' (or any "
            "command) brings it there",
            highlight=False,
        )


def _name(revision: str | None) -> str:
    return f"revision {revision}" if revision else "no revision (empty, or made before Alembic)"
