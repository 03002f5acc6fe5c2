"""A database brought to a revision by Alembic's revisions themselves (db.connect makes an
empty database at the newest one in one step, without them)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from syndicate import db
from syndicate.db import Engine


def by_revisions(url: str, revision: str = "head") -> Engine:
    """The database at `url` brought to `revision` by running the revisions it lacks, as a
    database an older syndicate made is."""
    engine = db.connect(url, upgrade=False)
    with engine.connect() as conn:
        config = Config()
        config.set_main_option("script_location", str(db.migrate.MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()
    return engine
