"""A send keeps its connections busy: while one batch is recorded in the database, the next one
is already on its way (and the one after it claimed and composed). The journal keeps the lines
of the batch still being sent when the batch before it is recorded."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.smtp import Envelope, Session
from sqlalchemy import event

from syndicate.delivery import dispatch
from syndicate.delivery.journal import Journal
from syndicate.delivery.transports import make_transport
from syndicate.runtime import Runtime
from tests.delivery_support import add_readers, newsletter_send, use_smtp
from tests.support.smtp import running_smtp

RECORDING_SECONDS = 0.3


@dataclass
class TimedHandler:
    """Notes when each message arrives."""

    arrivals: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.arrivals.append(time.monotonic())
        return "250 accepted"


def test_the_next_batch_goes_out_while_the_last_one_is_recorded(project: Path) -> None:
    handler = TimedHandler()
    with running_smtp(handler) as (controller, _):
        use_smtp(project, controller.port, batch_size=10, connections=2)
        cfg, engine, send_id = newsletter_send(project)
        add_readers(engine, 40)
        recordings: list[float] = []

        # Recording a batch (one UPDATE per delivery, as an executemany) is made slow.
        @event.listens_for(engine, "before_cursor_execute")
        def slow_recording(conn, cursor, statement, parameters, context, executemany) -> None:
            if executemany and statement.startswith("UPDATE deliveries SET state"):
                recordings.append(time.monotonic())
                time.sleep(RECORDING_SECONDS)

        summary = dispatch.run_send(Runtime(cfg, engine=engine), send_id, make_transport(cfg))
        engine.dispose()
    assert summary.sent >= 40 and len(handler.arrivals) == summary.sent
    assert len(recordings) >= 4  # one per batch of 10
    during = [
        arrived
        for arrived in handler.arrivals
        if any(start <= arrived < start + RECORDING_SECONDS for start in recordings)
    ]
    # Messages of the next batch arrived while the last one was being recorded (sending and
    # recording one after the other, none would).
    assert len(during) >= 10, (len(during), len(recordings))


def test_forgetting_a_recorded_batch_keeps_the_lines_of_the_batch_still_sending(
    tmp_path: Path,
) -> None:
    path = tmp_path / "syndicate.db.accepted-journal"
    journal = Journal(path)
    journal.open()
    try:
        for delivery_id in (1, 2, 3):
            journal.note(delivery_id, f"<{delivery_id}@example.com>", "250 accepted")
        inode = path.stat().st_ino
        journal.forget({1, 2, 99})
        # Replaced whole (a kill leaves the old file or the new one), and written to after.
        assert path.stat().st_ino != inode
        journal.note(4, "<4@example.com>", "250 accepted")
        assert [(e.delivery_id, e.message_id) for e in journal.entries()] == [
            (3, "<3@example.com>"),
            (4, "<4@example.com>"),
        ]
        assert path.stat().st_mode & 0o777 == 0o600
        journal.forget({3, 4})
        assert journal.entries() == [] and path.stat().st_size == 0
        journal.note(5, "<5@example.com>", "250 accepted")
        assert [e.delivery_id for e in journal.entries()] == [5]
    finally:
        journal.close()
    assert not path.with_name(path.name + ".new").exists()
