"""The database: schema, Alembic migrations, and one module of queries per aggregate.

Only this package imports SQLAlchemy. Other code writes `from syndicate import db` and calls
`db.sends.get_send(conn, 7)`, and names the types `db.Engine`, `db.Connection`. Importing this
package is cheap: each module (and SQLAlchemy) loads when first used, so `syndicate --help`
never pays for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syndicate.db import (
        answers,
        bounces,
        corrections,
        deliveries,
        desk,
        engine,
        feed_checks,
        inbox_state,
        list_files,
        locks,
        login_lock,
        meta,
        migrate,
        posts,
        rates,
        recipients,
        replies,
        schema,
        sends,
        status_changes,
        times,
    )
    from syndicate.db.engine import (
        URL,
        Connection,
        DatabaseError,
        Engine,
        IntegrityError,
        connect,
    )
    from syndicate.db.times import as_utc, now

__all__ = [
    "URL",
    "Connection",
    "DatabaseError",
    "Engine",
    "IntegrityError",
    "answers",
    "as_utc",
    "bounces",
    "connect",
    "corrections",
    "deliveries",
    "desk",
    "engine",
    "feed_checks",
    "inbox_state",
    "list_files",
    "locks",
    "login_lock",
    "meta",
    "migrate",
    "now",
    "posts",
    "rates",
    "recipients",
    "replies",
    "schema",
    "sends",
    "status_changes",
    "times",
]
# The names above that engine.py and times.py define; the others are this package's modules.
_FROM_ENGINE = frozenset(
    {"URL", "Connection", "DatabaseError", "Engine", "IntegrityError", "connect"}
)
_FROM_TIMES = frozenset({"as_utc", "now"})


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'syndicate.db' has no attribute {name!r}")
    if name in _FROM_TIMES:
        return getattr(importlib.import_module("syndicate.db.times"), name)
    if name in _FROM_ENGINE:
        return getattr(importlib.import_module("syndicate.db.engine"), name)
    return importlib.import_module(f"syndicate.db.{name}")
