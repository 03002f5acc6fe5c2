"""A send keeps its connections busy: while one batch is recorded in the database, the next one
is already on its way (and the one after it claimed and composed). The journal keeps the lines
of the batch still being sent when the batch before it is recorded."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.smtp import Envelope, Session
from sqlalchemy import event

from syndicate.delivery import dispatch
from syndicate.delivery.journal import Journal
from syndicate.delivery.transports import make_transport
from syndicate.runtime import Runtime
from tests.support.delivery import add_readers, newsletter_send, use_smtp
from tests.support.smtp import RecordingHandler, running_smtp

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


def test_a_batch_whose_recording_fails_stops_the_send_and_the_rerun_sends_nobody_twice(
    project: Path,
) -> None:
    handler = RecordingHandler()
    with running_smtp(handler) as (controller, _):
        use_smtp(project, controller.port, batch_size=10, connections=2)
        cfg, engine, send_id = newsletter_send(project)
        readers = add_readers(engine, 60)
        failed: list[bool] = []

        @event.listens_for(engine, "before_cursor_execute")
        def database_gone_once(conn, cursor, statement, parameters, context, executemany):
            if executemany and statement.startswith("UPDATE deliveries SET state") and not failed:
                failed.append(True)
                raise OSError("the database went away")

        with pytest.raises(OSError, match="went away"):
            dispatch.run_send(Runtime(cfg, engine=engine), send_id, make_transport(cfg))
        first_run = len(handler.messages)
        assert 10 <= first_run <= 20  # the batch that failed, and the one already in flight
        summary = dispatch.run_send(Runtime(cfg, engine=engine), send_id, make_transport(cfg))
        engine.dispose()
    copies = Counter(r for m in handler.messages for r in m.rcpt_tos)
    assert set(readers) <= set(copies) and max(copies.values()) == 1, copies.most_common(3)
    assert summary.sent == len(copies) - first_run


def test_a_database_in_memory_records_its_batches_in_the_sending_thread(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_DATABASE_URL", "sqlite://")
    cfg, engine, send_id = newsletter_send(project)  # outbox transport, as shipped
    add_readers(engine, 25)
    summary = dispatch.run_send(
        Runtime(cfg, engine=engine), send_id, make_transport(cfg), batch_size=10
    )
    assert summary.sent >= 25 and summary.failed == 0
