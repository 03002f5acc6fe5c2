"""Provider limits hold for all workers together: `rate_per_second` and `rate_per_hour` are
reserved from the database (db/rates.py), not counted per process.

The sink records when each message arrives; two `syndicate send` processes share one send.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from pathlib import Path

from syndicate import db
from syndicate.delivery.throttle import SharedThrottle
from tests.conftest import run_cli, running_smtp, set_setting
from tests.test_workers import _two_sends, readers, use_sink

RATE = 20  # messages a second, for both workers together
# Arrivals in any one second may exceed the limit by this many: slots are exact by the
# database's clock, but a busy machine delays some messages and lets the next ones catch up.
TOLERANCE = RATE // 4


# How long the first worker's greeting may wait for the second worker's (see ArrivalSink).
START_GATE = 90.0


class ArrivalSink:
    """Records the moment each DATA arrives (before answering).

    Once `pair_starts()` is called, the first EHLO is answered only when a second one arrives
    (or after START_GATE seconds). A send opens its first connection before it claims anything
    or reserves a slot, and waits there for the answer: so both workers start sending at the
    same moment, however long the second takes to start on a loaded machine (once, under load
    14, the first sent all 80 messages before the second had started)."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.lock = threading.Lock()
        self.greetings = 0
        self.paired = asyncio.Event()
        self.pairing = False
        self.waited_out = False

    def pair_starts(self) -> None:
        self.pairing = True

    async def handle_EHLO(  # type: ignore[no-untyped-def]
        self, server, session, envelope, hostname, responses
    ) -> list[str]:
        session.host_name = hostname
        if self.pairing:
            self.greetings += 1
            if self.greetings == 2:
                self.paired.set()
            elif self.greetings == 1:
                try:
                    await asyncio.wait_for(self.paired.wait(), START_GATE)
                except TimeoutError:
                    self.waited_out = True
        return responses

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        with self.lock:
            self.arrivals.append(time.monotonic())
        return "250 OK"


def busiest_second(arrivals: list[float]) -> int:
    """The most arrivals within any one second (a sliding window)."""
    times = sorted(arrivals)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_two_workers_together_keep_rate_per_second(postgres_url: str, project: Path) -> None:
    count = 4 * RATE
    addresses = readers(project, count)
    sink = ArrivalSink()
    with running_smtp(sink) as (controller, _):
        use_sink(project, controller.port)
        config = project / "settings.toml"
        set_setting(config, "rate_per_second = 0", f"rate_per_second = {RATE}")
        set_setting(config, "batch_size = 20", "batch_size = 10")
        # the first worker's greeting waits for the second's (START_GATE) within this timeout
        set_setting(config, "timeout_seconds = 30", "timeout_seconds = 120")
        assert run_cli(project, "-q", "run", "--once").returncode == 0
        sink.pair_starts()
        processes = _two_sends(project)
        outputs = [p.communicate(timeout=300) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    assert sink.greetings >= 2 and not sink.waited_out, "the second worker never connected"
    sent = [
        int(line.split(" done: ")[1].split()[0])
        for _, err in outputs
        for line in err.splitlines()
        if " done: " in line
    ]
    assert sum(sent) == count and min(sent) > 0, sent  # both sent, side by side
    assert len(sink.arrivals) == len(addresses)
    assert busiest_second(sink.arrivals) <= RATE + TOLERANCE, busiest_second(sink.arrivals)
    span = max(sink.arrivals) - min(sink.arrivals)
    assert (count - 1) / span <= RATE * 1.1, f"{count} messages in {span:.2f} s"


def test_reserved_slots_never_overlap_between_processes(tmp_path: Path) -> None:
    """On the suite's database (SQLite file or PostgreSQL): threads with their own connections
    reserve at once; every slot is its own, spaced by 1/rate, in one line of time."""
    engine = db.connect(_url(tmp_path))
    reserved: list[float] = []
    lock = threading.Lock()

    def reserve() -> None:
        for _ in range(10):
            with engine.begin() as conn:
                _, slots = db.rates.reserve(conn, "smtp test", 3, 100.0, 0)
            with lock:
                reserved.extend(slots)

    threads = [threading.Thread(target=reserve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    slots = sorted(reserved)
    assert len(slots) == 120
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) >= 0.01 - 1e-6, min(gaps)


def test_the_hourly_limit_moves_the_next_slot_an_hour_on(tmp_path: Path) -> None:
    engine = db.connect(_url(tmp_path))
    with engine.begin() as conn:
        now, first = db.rates.reserve(conn, "smtp hourly", 5, 0.0, 5)
    with engine.begin() as conn:
        _, then = db.rates.reserve(conn, "smtp hourly", 2, 0.0, 5)
    engine.dispose()
    assert max(first) - now < 1.0
    assert all(3598 < slot - now <= 3600 for slot in then), then


def test_a_throttle_reserves_a_tenth_of_a_second_at_a_time(tmp_path: Path) -> None:
    engine = db.connect(_url(tmp_path))
    waits: list[float] = []
    throttle = SharedThrottle(engine, "smtp fast", 200.0, sleep=waits.append)
    for _ in range(100):
        throttle.acquire()
    engine.dispose()
    assert throttle.reservations == 5  # 20 slots each, not a transaction per message
    # Nobody sleeps here, so the 100th message would wait 99/200 s, less the real time the
    # five transactions took meanwhile.
    assert 0 < max(waits) < 0.5


def _url(tmp_path: Path) -> str:
    import os

    return os.environ.get("SYNDICATE_DATABASE_URL") or f"sqlite:///{tmp_path / 'rates.db'}"
