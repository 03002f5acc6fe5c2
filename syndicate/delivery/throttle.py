"""A provider's rate limit held by every message together (`[transport.smtp] rate_per_second`,
`rate_per_hour`), through the database.

Every SMTP transport the runtime hands out (`Runtime.transport`: editions, column drafts,
correction advisories, notices and desk replies alike) and every send (`dispatch.run_send`)
takes its slots from the limit's row in the database (db/rates.py), on SQLite as on
PostgreSQL: a `syndicate send`, the daemon's notices and the desk's replies run in different
processes, and several workers on PostgreSQL. Each process reserves a short run of sending
slots at a time, about a tenth of a second's worth, and sends one message per slot.
SendGrid's API has no rate setting here: its limits are the provider's own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from syndicate import db
from syndicate.db import Engine
from syndicate.delivery.transports.base import Transport
from syndicate.delivery.transports.smtp import SmtpTransport
from syndicate.settings import Smtp

log = logging.getLogger(__name__)

# Slots reserved per transaction: a tenth of a second's worth, at least 1, at most this many.
# More would leave a stopping worker holding slots nobody uses; fewer, a transaction per message.
MOST_SLOTS_AT_ONCE = 50


class SharedThrottle:
    """`acquire()` waits for this process's next slot of the shared limit. Thread-safe: the
    transport's connection threads share one throttle and one reserve of slots."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        per_second: float = 0.0,
        per_hour: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine, self.name = engine, name
        self.per_second, self.per_hour = per_second, per_hour
        self.clock, self.sleep = clock, sleep
        self.at_once = max(1, min(MOST_SLOTS_AT_ONCE, int(per_second / 10) if per_second else 10))
        self.slots: deque[float] = deque()
        self.lock = threading.Lock()
        self.reservations = 0  # transactions made, for tests and logs

    def acquire(self) -> None:
        if not self.per_second and not self.per_hour:
            return
        with self.lock:
            if not self.slots:
                self._reserve()
            at = self.slots.popleft()
        wait = at - self.clock()
        if wait > 0:
            if wait > 60:
                log.info("rate limit %s reached; waiting %.0f s", self.name, wait)
            self.sleep(wait)

    def _reserve(self) -> None:
        with self.engine.begin() as conn:
            now, slots = db.rates.reserve(
                conn, self.name, self.at_once, self.per_second, self.per_hour
            )
        here = self.clock()
        self.slots.extend(here + slot - now for slot in slots)
        self.reservations += 1


def limit_name(config: Smtp) -> str:
    """The limit belongs to the account at the provider: host, port and login."""
    return f"smtp {config.username or '-'}@{config.host}:{config.port}"[:200]


def share_limits(transport: Transport, engine: Engine | Callable[[], Engine]) -> Transport:
    """Make an SMTP transport with a rate limit take its slots from the shared limit in the
    database (`engine`, or what it returns: opened only when a limit is set); returns the
    transport. Any other transport is left as it is."""
    inner = getattr(transport, "inner", transport)  # under the DKIM signing wrapper
    if not isinstance(inner, SmtpTransport) or isinstance(inner.limiter, SharedThrottle):
        return transport
    config = inner.config
    if not config.rate_per_second and not config.rate_per_hour:
        return transport
    inner.limiter = SharedThrottle(
        engine() if callable(engine) else engine,
        limit_name(config),
        config.rate_per_second,
        config.rate_per_hour,
    )
    return transport
