"""What the sending commands (send, run, worker) share: the progress bar, stopping cleanly on a
signal, and the line that says how to resume."""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from syndicate import db
from syndicate.cli import common

if TYPE_CHECKING:
    from syndicate.db import Engine


class RateColumn(ProgressColumn):
    """Messages per second, so a long send shows how fast it is going."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} msg/s" if speed else "- msg/s")


def send_progress() -> Progress:
    """The progress bar of every send: count, percent, rate, elapsed time and ETA."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=common.err,
        disable=common.quiet(),
    )


@dataclass
class Interruption:
    """The first SIGINT or SIGTERM a sending command received, if any: `stop` is set, and the
    batch in flight is finished and recorded before the command stops."""

    stop: threading.Event = field(default_factory=threading.Event)
    signum: int = 0

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a command a signal ended: 130, 143."""
        return 128 + self.signum


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def interruptible(stop: threading.Event | None = None) -> Iterator[Interruption]:
    """SIGINT (Ctrl-C) and SIGTERM set `stop` instead of killing the process; the same signal
    again kills it at once (what was sent is still journaled, see syndicate.delivery.journal)."""
    interruption = Interruption(stop) if stop is not None else Interruption()

    def request_stop(signum: int, _frame: object) -> None:
        if not interruption.signum:
            interruption.signum = signum
        common.err.print(
            f"{signal.Signals(signum).name}: finishing the batch in flight, then stopping "
            "(again to force)",
            highlight=False,
        )
        interruption.stop.set()
        signal.signal(signum, signal.SIG_DFL)

    previous = {signum: signal.signal(signum, request_stop) for signum in STOP_SIGNALS}
    try:
        yield interruption
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def still_to_send(engine: Engine, send_ids: list[int]) -> int:
    """Deliveries of these sends that are not finished (pending, claimed or deferred)."""
    unfinished = ("pending", "sending", "deferred")
    with engine.connect() as conn:
        return sum(
            n
            for send_id in send_ids
            for state, n in db.deliveries.delivery_counts(conn, send_id).items()
            if state in unfinished
        )


def print_interrupted(interruption: Interruption, sent: int, left: int) -> None:
    """The one line a sending command prints when a signal stopped it."""
    command = shlex.join(["syndicate", *sys.argv[1:]])
    common.console.print(
        f"Interrupted by {interruption.name}: the batch in flight was finished and recorded; "
        f"{sent:,} message(s) sent in this run, {left:,} still to send. "
        f"Run '{command}' to resume; nobody gets a message twice.",
        highlight=False,
        markup=False,
    )
