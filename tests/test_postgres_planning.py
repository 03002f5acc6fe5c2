"""Planning a send on PostgreSQL: true counts, and a plan that stays linear as the list grows.

Runs on PostgreSQL whichever database the suite runs on (the `postgres_url` fixture).
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from syndicate import db, settings
from syndicate.models import Channel, RecipientKind
from tests.support.cli import run_cli


def listed(project: Path, name: str) -> int:
    lines = (project / "subscribers" / name).read_text(encoding="utf-8").splitlines()
    return len([line for line in lines[1:] if line.strip()])


def test_the_log_counts_the_deliveries_planned(postgres_url: str, project: Path) -> None:
    # psycopg 3 gives rowcount -1 for INSERT … SELECT: the log said "-1 new deliveries planned".
    # The first run mails the newest post to both channels (first_run = "newest").
    result = run_cli(project, "-v", "run", "--once")
    assert result.returncode == 0, result.stderr
    planned = re.findall(r"\((\w+), .*\): (-?\d+) new deliveries planned", result.stderr)
    expected = {
        "newsletter": listed(project, "readers.csv"),
        "column": listed(project, "editors.csv"),
    }
    assert {channel: int(n) for channel, n in planned} == expected, result.stderr


def test_planning_is_an_anti_join_not_a_not_in_subplan(postgres_url: str, project: Path) -> None:
    # `NOT IN (subquery)` is a per-row SubPlan once the deliveries outgrow work_mem (4.7 ms →
    # 3,973 ms at 10,000 readers with work_mem 64 kB); NOT EXISTS / ON CONFLICT plan linearly.
    assert run_cli(project, "-q", "run", "--once").returncode == 0
    cfg = settings.load(project / "settings.toml")
    engine = db.connect(cfg.database_url)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "INSERT INTO deliveries" in statement:
            statements.append((statement, parameters))

    with engine.begin() as conn:
        send_id = conn.execute(
            select(db.schema.sends.c.id).where(
                db.schema.sends.c.channel == Channel.NEWSLETTER.value
            )
        ).scalar_one()
        db.deliveries.plan_deliveries(conn, send_id, RecipientKind.READER)
    assert len(statements) == 1
    statement, parameters = statements[0]
    with engine.connect() as conn:
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
    engine.dispose()
    assert "SubPlan" not in plan, plan


def test_a_worker_joining_a_send_waits_for_its_plan_instead_of_planning_it_again(
    postgres_url: str, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Two `send`s started together: the second planned the whole list again against a
    # snapshot taken before the first committed, and joined seconds late (bench/workers.py).
    from syndicate.delivery import dispatch
    from syndicate.delivery.transports import make_transport
    from syndicate.runtime import Runtime
    from tests.support.delivery import add_readers, newsletter_send

    cfg, engine, send_id = newsletter_send(project)
    add_readers(engine, 30)
    planning = engine.connect()
    transaction = planning.begin()
    # A first worker, planning: the send locked, every delivery planned, nothing committed.
    db.sends.lock_planning(planning, send_id)
    assert db.deliveries.plan_deliveries(planning, send_id, RecipientKind.READER) >= 30
    caplog.set_level(logging.INFO, logger="syndicate.delivery.dispatch")
    summaries: list[Any] = []
    joining = threading.Thread(
        target=lambda: summaries.append(
            dispatch.run_send(Runtime(cfg, engine=engine), send_id, make_transport(cfg))
        )
    )
    joining.start()
    joining.join(timeout=1.5)
    outbox = project / "outbox"
    assert joining.is_alive() and not list(outbox.glob("*.eml"))  # waits for the plan
    transaction.commit()
    planning.close()
    joining.join(timeout=60)
    assert not joining.is_alive() and summaries[0].sent >= 30
    # It found the plan committed (it planned nothing itself).
    assert "): 0 new deliveries planned" in caplog.text, caplog.text
    engine.dispose()


def test_a_hold_while_a_send_is_planned_neither_waits_nor_is_lost(
    postgres_url: str, project: Path
) -> None:
    from syndicate.models import SendState
    from syndicate.scheduling import send_control
    from tests.support.delivery import add_readers, newsletter_send

    _cfg, engine, send_id = newsletter_send(project)
    add_readers(engine, 30)
    with engine.connect() as planning, planning.begin():  # a run planning the send
        db.sends.lock_planning(planning, send_id)
        send = db.sends.get_send(planning, send_id)
        assert send is not None
        db.deliveries.plan_deliveries(planning, send_id, RecipientKind.READER)
        # The columnist holds it meanwhile: answered at once, not after the plan.
        holding = threading.Thread(target=send_control.hold, args=(engine, send_id))
        holding.start()
        holding.join(timeout=10)
        assert not holding.is_alive()
        assert not db.sends.start_sending(planning, send_id, send.state)  # the hold wins
    with engine.connect() as conn:
        assert db.sends.send_state(conn, send_id) == SendState.HELD
    engine.dispose()


def test_a_send_is_not_marked_done_while_another_run_plans_new_deliveries(
    postgres_url: str, project: Path
) -> None:
    # A worker finishing its part counted the deliveries before a joining run's plan (readers
    # who subscribed meanwhile) was committed, marked the send done, and they were never sent.
    from syndicate.delivery import dispatch
    from syndicate.delivery.transports import make_transport
    from syndicate.models import DeliveryState, SendState
    from syndicate.runtime import Runtime
    from tests.support.delivery import add_readers, newsletter_send

    cfg, engine, send_id = newsletter_send(project)
    add_readers(engine, 10)
    dispatch.run_send(Runtime(cfg, engine=engine), send_id, make_transport(cfg))
    with engine.begin() as conn:
        db.sends.set_send_state(conn, send_id, SendState.SENDING)  # as while it goes out
    add_readers(engine, 5, start=1000)
    finished: list[dict[DeliveryState, int]] = []
    with engine.connect() as planning, planning.begin():  # a joining run, planning
        db.sends.lock_planning(planning, send_id)
        assert db.deliveries.plan_deliveries(planning, send_id, RecipientKind.READER) == 5
        finishing = threading.Thread(
            target=lambda: finished.append(dispatch.finish_if_done(engine, send_id))
        )
        finishing.start()
        finishing.join(timeout=1.5)
        assert finishing.is_alive()  # it waits for the plan
    finishing.join(timeout=30)
    assert finished and finished[0].get(DeliveryState.PENDING) == 5
    with engine.connect() as conn:
        assert db.sends.send_state(conn, send_id) == SendState.SENDING
    engine.dispose()
