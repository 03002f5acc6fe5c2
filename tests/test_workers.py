"""Several workers on one send (PostgreSQL): claims with SKIP LOCKED and a lease, a live
worker's rows never taken back, a dead one's returned, an empty claim not taken for the end,
and two `syndicate send` processes sharing the work with nobody mailed twice or forgotten.

Runs on PostgreSQL whichever database the suite runs on (the `postgres_url` fixture).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from syndicate import db, settings
from syndicate.delivery import workers
from syndicate.models import Channel, DeliveryState, RecipientKind
from tests.conftest import run_cli, running_smtp, set_setting

READERS = 400


class SlowSink:
    """Answers each DATA after `delay` seconds; counts every recipient it accepted."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        await asyncio.sleep(self.delay)
        with self.lock:
            self.received.update(a.lower() for a in envelope.rcpt_tos)
        return "250 OK"

    def total(self) -> int:
        with self.lock:
            return sum(self.received.values())


def readers(project: Path, count: int = READERS) -> list[str]:
    addresses = [f"reader{n:05d}@workers.example.com" for n in range(count)]
    lines = ["email,name", *(f"{a},Reader {n}" for n, a in enumerate(addresses))]
    (project / "subscribers" / "readers.csv").write_text("\n".join(lines) + "\n")
    return addresses


def use_sink(project: Path, port: int, connections: int = 2) -> None:
    config = project / "settings.toml"
    set_setting(config, 'first_run = "newest"', 'first_run = "none"')
    set_setting(config, 'kind = "outbox"', 'kind = "smtp"')
    set_setting(config, 'host = "localhost"\nport = 587', f'host = "127.0.0.1"\nport = {port}')
    set_setting(config, 'security = "starttls"', 'security = "none"')
    set_setting(config, "connections = 2", f"connections = {connections}")
    set_setting(config, "batch_size = 100", "batch_size = 20")


def planned_send(project: Path) -> tuple[db.Engine, int]:
    """The newsletter send of the newest post, planned (no worker has claimed any row yet)."""
    set_setting(project / "settings.toml", 'first_run = "newest"', 'first_run = "none"')
    assert run_cli(project, "-q", "run", "--once").returncode == 0
    cfg = settings.load(project / "settings.toml")
    engine = db.connect(cfg.database_url)
    with engine.begin() as conn:
        post = db.posts.find_post(conn, "latest")
        assert post is not None and post.id is not None
        send_id = db.sends.create_send(conn, post.id, Channel.NEWSLETTER, db.now())
        assert send_id is not None
        db.deliveries.plan_deliveries(conn, send_id, RecipientKind.READER)
    return engine, send_id


def claim(engine: db.Engine, send_id: int, claimer: str, limit: int = 50, **kw) -> set[int]:
    with engine.begin() as conn:
        rows = db.deliveries.claim_batch(conn, send_id, limit, claimer=claimer, **kw)
    return {delivery_id for delivery_id, _ in rows}


def test_two_workers_claiming_at_once_take_different_rows(postgres_url: str, project: Path) -> None:
    readers(project, 100)
    engine, send_id = planned_send(project)
    # Worker A's claim is still uncommitted (its rows locked) when B claims: B skips them.
    with engine.begin() as a:
        taken_by_a = {
            d for d, _ in db.deliveries.claim_batch(a, send_id, 30, claimer="elsewhere:1:a")
        }
        taken_by_b = claim(engine, send_id, "elsewhere:2:b", 30)
    assert len(taken_by_a) == len(taken_by_b) == 30
    assert not taken_by_a & taken_by_b
    engine.dispose()


def test_a_live_workers_rows_stay_its_own_and_a_lapsed_lease_returns_them(
    postgres_url: str, project: Path
) -> None:
    readers(project, 40)
    engine, send_id = planned_send(project)
    held = claim(engine, send_id, "another-machine:77:live", 40)
    assert len(held) == 40
    # Empty for another worker, and that is not the end of the send.
    assert claim(engine, send_id, "here:1:b") == set()
    with engine.begin() as conn:
        assert db.deliveries.requeue(conn, send_id, workers.gone) == (0, 0)
        assert db.deliveries.in_flight(conn, send_id) == 40
    # The lease is judged by the database's clock, whatever this machine's clock says.
    with engine.begin() as conn:
        lapsed = db.deliveries.database_now(conn) - timedelta(seconds=1)
        conn.execute(
            db.schema.deliveries.update()
            .where(db.schema.deliveries.c.send_id == send_id)
            .values(claimed_until=lapsed)
        )
        assert db.deliveries.requeue(conn, send_id, workers.gone) == (40, 0)
    assert len(claim(engine, send_id, "here:1:b")) == 40
    engine.dispose()


def test_the_lease_runs_on_the_database_clock(postgres_url: str, project: Path) -> None:
    readers(project, 5)
    engine, send_id = planned_send(project)
    claim(engine, send_id, "skewed:1:x", 5, lease=timedelta(minutes=10))
    with engine.connect() as conn:
        server_now = db.deliveries.database_now(conn)
        until = {
            db.as_utc(row.claimed_until) for row in conn.execute(db.schema.deliveries.select())
        }
    [value] = until
    assert abs((value - server_now) - timedelta(minutes=10)) < timedelta(seconds=30)
    engine.dispose()


def test_rows_of_a_dead_process_on_this_machine_come_back_at_once(
    postgres_url: str, project: Path
) -> None:
    readers(project, 10)
    engine, send_id = planned_send(project)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    name = workers.claimer_name().rsplit(":", 2)[0] + f":{dead.pid}:gone"
    claim(engine, send_id, name, 10)
    assert workers.gone(name) and not workers.gone(f"another-machine:{os.getpid()}:x")
    with engine.begin() as conn:
        assert db.deliveries.requeue(conn, send_id, workers.gone) == (10, 0)
    engine.dispose()


def _two_sends(project: Path) -> list[subprocess.Popen[str]]:
    command = [sys.executable, "-m", "syndicate", "--config", str(project / "settings.toml")]
    return [
        subprocess.Popen(
            [*command, "-v", "send", "latest"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]


def test_two_sends_share_the_work_and_nobody_gets_two_copies(
    postgres_url: str, project: Path
) -> None:
    addresses = readers(project)
    sink = SlowSink(0.01)
    with running_smtp(sink) as (controller, _):
        use_sink(project, controller.port)
        assert run_cli(project, "-q", "run", "--once").returncode == 0
        processes = _two_sends(project)
        outputs = [p.communicate(timeout=300) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    assert sorted(sink.received) == sorted(addresses)
    assert set(sink.received.values()) == {1}
    sent = [
        int(line.split(" done: ")[1].split()[0])
        for _, err in outputs
        for line in err.splitlines()
        if " done: " in line
    ]
    assert sum(sent) == READERS and min(sent) > 0, sent  # both worked
    listed = run_cli(project, "sends", "list", "--json")
    assert '"state": "done"' in listed.stdout


def test_kill_9_of_one_of_two_sends_loses_nobody(postgres_url: str, project: Path) -> None:
    addresses = readers(project)
    sink = SlowSink(0.01)
    connections = 2
    with running_smtp(sink) as (controller, _):
        use_sink(project, controller.port, connections)
        assert run_cli(project, "-q", "run", "--once").returncode == 0
        victim, survivor = _two_sends(project)
        deadline = time.monotonic() + 120
        while sink.total() < READERS // 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(victim.pid, signal.SIGKILL)
        victim.communicate(timeout=30)
        _, err = survivor.communicate(timeout=300)
        assert survivor.returncode == 0, err
        # The survivor may have finished before the victim's rows came back: one more run.
        again = run_cli(project, "send", "latest")
        assert again.returncode == 0, again.stderr
    assert set(addresses) - set(sink.received) == set()  # 0 lost
    duplicated = sum(n - 1 for n in sink.received.values())
    assert duplicated <= connections, duplicated
    engine = db.connect(settings.load(project / "settings.toml").database_url)
    with engine.connect() as conn:
        states = Counter(row.state for row in conn.execute(db.schema.deliveries.select()))
    engine.dispose()
    assert states == {DeliveryState.SENT.value: READERS}


def test_a_worker_joins_a_send_going_out_and_exits_when_idle(
    postgres_url: str, project: Path
) -> None:
    addresses = readers(project)
    sink = SlowSink(0.03)
    command = [sys.executable, "-m", "syndicate", "--config", str(project / "settings.toml")]
    with running_smtp(sink) as (controller, _):
        use_sink(project, controller.port)
        assert run_cli(project, "-q", "run", "--once").returncode == 0
        send = subprocess.Popen(
            [*command, "-q", "send", "latest"], cwd=project, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 120
        while sink.total() < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        worker = subprocess.run(
            [*command, "worker", "--concurrency", "2", "--poll-seconds", "0.2", "--until-idle"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=300,
        )
        _, err = send.communicate(timeout=300)
    assert send.returncode == 0, err
    assert worker.returncode == 0, worker.stderr
    helped = int(worker.stdout.split("worker: ", 1)[1].split()[0])
    assert 0 < helped < READERS, worker.stdout
    assert sorted(sink.received) == sorted(addresses)
    assert set(sink.received.values()) == {1}


def test_a_worker_on_sqlite_is_one_clear_line(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNDICATE_DATABASE_URL", raising=False)
    result = run_cli(project, "worker", "--until-idle")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: syndicate worker needs PostgreSQL: on SQLite one process sends (syndicate run)"
    ]
