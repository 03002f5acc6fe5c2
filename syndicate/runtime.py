"""What every entrance builds once from the settings and passes down: the database, the token key,
the templates, the transport factory, the clock, the daemon lock and a logger.

The command line keeps one as Typer's context object, the web app as `app.state.runtime`, the
daemon's jobs receive it as their argument. Building one is cheap: nothing heavy (SQLAlchemy,
Jinja2, the transports) is imported or opened until first used, and each part is made once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from jinja2 import Environment

    from syndicate.db import Engine
    from syndicate.delivery.transports.base import Transport
    from syndicate.scheduling.election import DaemonLock
    from syndicate.settings import Settings


class Clock(Protocol):
    """Time as the sends see it: tests pass one whose `sleep` only moves its `now` forward."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class SystemClock:
    """Real time, in UTC."""

    def now(self) -> datetime:
        return utc_now()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


TransportFactory = Callable[["Settings"], "Transport"]


def configured_transport(settings: Settings) -> Transport:
    """The transport settings.toml names (outbox, smtp or sendgrid, DKIM-signed when set)."""
    from syndicate.delivery.transports import make_transport

    return make_transport(settings)


class Runtime:
    """Settings plus what they open, each opened once, on first use.

    `engine` and `key` may be given (a test that opened the database itself, or signed its
    fixtures with a key of its own); otherwise the first reader of `engine` opens it from
    `settings.database_url`, and of `key` reads it from the environment or the database. The
    engine and the key are made under a lock: the web app and the daemon read them from worker
    threads.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        key: bytes | None = None,
        clock: Clock | None = None,
        transport_factory: TransportFactory = configured_transport,
        log: logging.Logger | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.transport_factory = transport_factory
        self.log = log or logging.getLogger("syndicate")
        self._engine = engine
        self._key = key
        self._templates: Environment | None = None
        self._opening = threading.Lock()

    @property
    def engine(self) -> Engine:
        """The database, opened (and created or migrated) on first use."""
        if self._engine is None:
            with self._opening:
                if self._engine is None:
                    from syndicate import db

                    self._engine = db.connect(self.settings.database_url)
        return self._engine

    @property
    def key(self) -> bytes:
        """The token key: the environment's, else the one generated once into the database."""
        if self._key is None:
            from syndicate import db

            engine = self.engine
            with self._opening:
                if self._key is None:
                    self._key = db.meta.hmac_key(engine, self.settings.hmac_key_from_env())
        return self._key

    @property
    def templates(self) -> Environment:
        """Jinja2 over the author's templates/ (syndicate's own as fallback), one per runtime."""
        if self._templates is None:
            from syndicate.render.environment import make_environment

            with self._opening:
                if self._templates is None:
                    folder = self.settings.path(self.settings.paths.templates)
                    self._templates = make_environment(folder)
        return self._templates

    @property
    def engine_opened(self) -> bool:
        return self._engine is not None

    def transport(self) -> Transport:
        """A new, unopened transport of the configured kind (the caller opens and closes it),
        taking its slots from the provider's limit shared by every message (delivery/throttle)."""
        from syndicate.delivery import throttle

        return throttle.share_limits(
            self.transport_factory(self.settings),
            lambda: self.engine,
            max_wait=throttle.ONE_OFF_MAX_WAIT,
        )

    def now(self) -> datetime:
        return self.clock.now()

    def daemon_lock(self) -> DaemonLock:
        """The one-daemon-per-database lock with the configured heartbeat: elected through
        PostgreSQL's advisory lock, or (SQLite) a row judged by this runtime's clock."""
        from syndicate.scheduling import election

        daemon = self.settings.daemon
        return election.lock_for(
            self.engine, daemon.heartbeat_seconds, daemon.stale_after_missed, self.clock.now
        )

    def close(self) -> None:
        """Close the database's pooled connections (if it was opened)."""
        if self._engine is not None:
            self._engine.dispose()

    def __repr__(self) -> str:
        opened = [name for name, part in self._parts().items() if part is not None]
        return f"Runtime({self.settings.path('.')}, opened: {', '.join(opened) or 'nothing'})"

    def _parts(self) -> dict[str, Any]:
        return {"engine": self._engine, "key": self._key, "templates": self._templates}
