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
from syndicate.errors import TransportError
from syndicate.settings import Smtp

log = logging.getLogger(__name__)

# Slots reserved per transaction: a tenth of a second's worth, at least 1, at most this many.
# More would leave a stopping worker holding slots nobody uses; fewer, a transaction per message.
MOST_SLOTS_AT_ONCE = 50
# How often a wait for the limit looks whether the send was asked to stop.
STOP_POLL = 0.5
# How long a one-off message (a notice, a forward, a desk reply) may wait for its slot.
ONE_OFF_MAX_WAIT = 10.0


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
        max_wait: float | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.engine, self.name = engine, name
        self.per_second, self.per_hour = per_second, per_hour
        self.clock, self.sleep = clock, sleep
        # None: wait as long as the limit says (a send); else give up beyond this many seconds
        # (a notice, a forward from the MTA pipe, a desk reply: they are retried later).
        self.max_wait = max_wait
        # A send's SIGINT/SIGTERM: a wait for the limit ends within STOP_POLL seconds.
        self.should_stop = should_stop
        at_once = int(per_second / 10) if per_second else 1
        if per_hour:  # slots reserved and never used still count against the hour's quota
            at_once = min(at_once, max(1, per_hour // 1000))
        self.at_once = max(1, min(MOST_SLOTS_AT_ONCE, at_once))
        self.slots: deque[float] = deque()
        self.lock = threading.Lock()
        self.reservations = 0  # transactions made, for tests and logs

    def acquire(self) -> None:
        """Wait for this process's next slot; raises TransportError (the message is deferred)
        when the slot is further away than `max_wait`, or when a stop is requested while
        waiting."""
        if not self.per_second and not self.per_hour:
            return
        with self.lock:
            if not self.slots:
                self._reserve()
            at = self.slots.popleft()
        wait = at - self.clock()
        if wait > 60:
            log.info("rate limit %s reached; waiting %.0f s", self.name, wait)
        while wait > 0:
            if self.should_stop is not None and self.should_stop():
                # The slot stays used: the limit can only be kept, never exceeded.
                raise TransportError("a stop was requested while waiting for the rate limit")
            self.sleep(min(wait, STOP_POLL) if self.should_stop is not None else wait)
            wait = at - self.clock()

    def _reserve(self) -> None:
        with self.engine.begin() as conn:
            now, slots = db.rates.reserve(
                conn, self.name, self.at_once, self.per_second, self.per_hour, self.max_wait
            )
        if not slots:
            raise TransportError(
                f"the provider's rate limit ({self.name}) has no slot within "
                f"{self.max_wait:.0f} s; the message is tried again later"
            )
        here = self.clock()
        self.slots.extend(here + slot - now for slot in slots)
        self.reservations += 1


def limit_name(config: Smtp) -> str:
    """The limit belongs to the account at the provider: host, port and login."""
    return f"smtp {config.username or '-'}@{config.host}:{config.port}"[:200]


def share_limits(
    transport: Transport,
    engine: Engine | Callable[[], Engine],
    *,
    max_wait: float | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Transport:
    """Make an SMTP transport with a rate limit take its slots from the shared limit in the
    database (`engine`, or what it returns: opened only when a limit is set); returns the
    transport. `max_wait` and `should_stop` as for SharedThrottle (a transport already sharing
    the limit takes these). Any other transport is left as it is."""
    inner = getattr(transport, "inner", transport)  # under the DKIM signing wrapper
    if not isinstance(inner, SmtpTransport):
        return transport
    if isinstance(inner.limiter, SharedThrottle):
        inner.limiter.max_wait, inner.limiter.should_stop = max_wait, should_stop
        return transport
    config = inner.config
    if not config.rate_per_second and not config.rate_per_hour:
        return transport
    inner.limiter = SharedThrottle(
        engine() if callable(engine) else engine,
        limit_name(config),
        config.rate_per_second,
        config.rate_per_hour,
        max_wait=max_wait,
        should_stop=should_stop,
    )
    return transport
