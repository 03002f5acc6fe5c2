"""SMTP delivery against a misbehaving server: every good address exactly once, refusals bounced."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from syndicate import db, settings
from syndicate.delivery import dispatch
from syndicate.delivery.transports.smtp import SendThrottle, SmtpTransport
from syndicate.models import DeliveryState, SendState
from syndicate.runtime import Runtime
from syndicate.settings import Smtp
from tests.conftest import free_port, running_smtp
from tests.support.delivery import (
    FakeClock,
    FaultyHandler,
    add_readers,
    newsletter_send,
    note,
    use_smtp,
)


@pytest.fixture
def faulty_server():
    with running_smtp(FaultyHandler(seed=7, p_451=0.08, p_421=0.05, p_drop=0.05)) as server:
        yield server


def _run(cfg: settings.Settings, engine, send_id: int, clock: FakeClock, **kwargs):
    from syndicate.delivery.transports import make_transport

    return dispatch.run_send(
        Runtime(cfg, engine=engine, clock=clock),
        send_id,
        make_transport(cfg),
        batch_size=cfg.transport.smtp.batch_size,
        backoff=dispatch.Backoff(first=30, longest=600, max_attempts=12),
        **kwargs,
    )


def test_faulty_server_gets_every_good_address_exactly_once(project: Path, faulty_server) -> None:
    controller, handler = faulty_server
    use_smtp(project, controller.port, batch_size=25, connections=3)
    cfg, engine, send_id = newsletter_send(project)
    emails = add_readers(engine, 300)
    refused = set(emails[::37])
    handler.refuse |= refused
    clock = FakeClock()

    summary = _run(cfg, engine, send_id, clock, wait_for_retries=3600)

    # The server really misbehaved, and the engine waited (on the fake clock) for retries.
    assert handler.faults["451"] > 0 and handler.faults["421"] > 0 and handler.faults["drop"] > 0
    assert clock.slept and all(s <= 600 for s in clock.slept)
    good = set(emails) - refused
    assert set(handler.delivered) == good
    assert all(n == 1 for n in handler.delivered.values()), handler.delivered.most_common(3)
    assert summary.sent == len(good) and summary.failed == len(refused)
    assert summary.deferred == 0
    with engine.connect() as conn:
        rows = list(db.deliveries.iter_deliveries(conn, send_id))
        bounced = set(
            conn.execute(
                select(db.schema.recipients.c.email).where(
                    db.schema.recipients.c.status == "bounced"
                )
            ).scalars()
        )
        assert db.sends.get_send(conn, send_id).state == "done"
    states = {r.email: r for r in rows}
    assert {r.state for r in rows} == {"sent", "failed"}
    assert all(states[e].state == "failed" and states[e].detail[:3] == "550" for e in refused)
    assert bounced == refused
    # Retried deliveries show their attempts; each message id is recorded.
    assert max(r.attempts for r in rows) > 1
    assert all(r.message_id for r in rows if r.state == "sent")


def test_deferred_messages_wait_for_their_back_off_time(project: Path, smtp_server) -> None:
    controller, handler = smtp_server
    use_smtp(project, controller.port, batch_size=10, connections=1)
    cfg, engine, send_id = newsletter_send(project)
    emails = add_readers(engine, 5)
    handler.refuse[emails[2]] = "451 4.7.1 Greylisted, try again later"
    clock = FakeClock()

    first = _run(cfg, engine, send_id, clock)  # does not wait: the retry is 30 s away
    assert (first.sent, first.deferred) == (4, 1)
    with engine.connect() as conn:
        row = next(r for r in db.deliveries.iter_deliveries(conn, send_id) if r.email == emails[2])
        assert row.state == "deferred" and row.attempts == 1
        assert db.as_utc(row.next_attempt_at) == clock.now() + timedelta(seconds=30)

    clock.sleep(10)
    early = _run(cfg, engine, send_id, clock)
    assert early.sent == 0 and len(handler.messages) == 4  # not yet due

    clock.sleep(25)  # now due; still greylisted: the next wait doubles
    second = _run(cfg, engine, send_id, clock)
    assert second.deferred == 1
    with engine.connect() as conn:
        row = next(r for r in db.deliveries.iter_deliveries(conn, send_id) if r.email == emails[2])
        assert row.attempts == 2
        assert db.as_utc(row.next_attempt_at) == clock.now() + timedelta(seconds=60)

    del handler.refuse[emails[2]]
    third = _run(cfg, engine, send_id, clock, wait_for_retries=120)
    assert third.sent == 1 and clock.slept[-1] == pytest.approx(60)
    assert sorted(m.rcpt_tos[0] for m in handler.messages) == sorted(emails)


def test_a_send_held_between_batches_stops_and_resumes(project: Path, smtp_server) -> None:
    controller, handler = smtp_server
    use_smtp(project, controller.port, batch_size=4, connections=1)
    cfg, engine, send_id = newsletter_send(project)
    add_readers(engine, 20)
    calls = []

    def hold_after_two_batches(n: int) -> None:
        calls.append(n)
        if len(calls) == 2:
            with engine.begin() as conn:  # what `syndicate hold` does from another process
                db.sends.set_send_state(conn, send_id, SendState.SCHEDULED)

    held = _run(cfg, engine, send_id, FakeClock(), progress=hold_after_two_batches)
    assert held.sent == 8 and len(handler.messages) == 8
    with engine.begin() as conn:
        assert db.deliveries.delivery_counts(conn, send_id)["pending"] == 12
        db.sends.set_send_state(conn, send_id, SendState.SENDING)  # released
    rest = _run(cfg, engine, send_id, FakeClock())
    assert rest.sent == 12 and len({m.rcpt_tos[0] for m in handler.messages}) == 20


def test_connections_are_reused_up_to_the_limit_then_renewed(smtp_server) -> None:
    controller, handler = smtp_server
    config = Smtp(
        host="127.0.0.1",
        port=controller.port,
        security="none",
        connections=2,
        max_per_connection=5,
    )
    transport = SmtpTransport(config)
    messages = [note(f"r{i}@example.org", i) for i in range(1, 21)]
    with transport:
        results = transport.send_messages(messages)
    assert [r.delivery_id for r in results] == list(range(1, 21))
    assert all(r.state is DeliveryState.SENT for r in results)
    assert len(handler.messages) == 20
    # 20 messages over 2 connections of at most 5 messages each: 4 sessions.
    assert transport.connections_opened == 4 and len(handler.sessions) == 4


def test_rate_limiter_spaces_messages_and_keeps_the_hourly_quota() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    per_second = SendThrottle(per_second=5, clock=lambda: now[0], sleep=sleep)
    for _ in range(11):
        per_second.acquire()
    assert now[0] == pytest.approx(2.0)  # 11 messages at 5/s: the last one at t = 2 s

    now[0], waits[:] = 0.0, []
    hourly = SendThrottle(per_hour=3, clock=lambda: now[0], sleep=sleep)
    for _ in range(7):
        hourly.acquire()
    assert waits == [pytest.approx(3600), pytest.approx(3600)]


def test_unreachable_server_is_reported_and_nothing_is_lost(project: Path) -> None:
    use_smtp(project, 9)
    cfg, engine, send_id = newsletter_send(project)
    add_readers(engine, 5)
    summary = _run(cfg, engine, send_id, FakeClock())
    assert "cannot connect to SMTP server 127.0.0.1:9" in summary.error
    with engine.connect() as conn:
        assert set(db.deliveries.delivery_counts(conn, send_id)) == {"pending"}


def test_server_gone_mid_send_stops_after_one_batch_and_loses_nobody(project: Path) -> None:
    handler = FaultyHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    use_smtp(project, controller.port, batch_size=5, connections=2)
    cfg, engine, send_id = newsletter_send(project)
    add_readers(engine, 40)

    class ServerDiesAfterOpen(SmtpTransport):
        def open(self) -> None:
            super().open()
            controller.stop()  # the server goes away after the first connection

    summary = dispatch.run_send(
        Runtime(cfg, engine=engine, clock=FakeClock()),
        send_id,
        ServerDiesAfterOpen(cfg.transport.smtp),
        batch_size=5,
        wait_for_retries=3600,
    )
    assert summary.sent == 0 and summary.deferred == 5
    with engine.connect() as conn:
        assert db.deliveries.delivery_counts(conn, send_id) == {"deferred": 5, "pending": 35}
        details = {r.detail for r in db.deliveries.iter_deliveries(conn, send_id) if r.detail}
    assert all(d.startswith("connection: cannot connect to SMTP server") for d in details)
