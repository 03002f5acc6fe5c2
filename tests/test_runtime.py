"""The Runtime: built once from the settings, it opens the database, makes the key and the
templates once each, on first use, and is what every entrance passes down (the CLI's context
object, the web app's state, the daemon's jobs). A real SQLite file and real settings here."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syndicate import db, settings
from syndicate.delivery.transports import OutboxTransport
from syndicate.runtime import Runtime, SystemClock
from syndicate.scheduling import jobs
from syndicate.web.app import create_app
from tests.support.scheduling import Blog, Clock, configure, outbox, utc

ROOT = Path(__file__).resolve().parent.parent
KEY = "k" * 40


def load(project: Path) -> settings.Settings:
    return settings.load(project / "settings.toml")


def test_building_one_opens_and_imports_nothing_heavy(project: Path) -> None:
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from syndicate import settings\n"
        "from syndicate.runtime import Runtime\n"
        "rt = Runtime(settings.load(Path(sys.argv[1])))\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'jinja2'})\n"
        "print(json.dumps({'heavy': heavy, 'repr': repr(rt)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(project / "settings.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["heavy"] == []
    assert result["repr"].endswith("opened: nothing)")
    assert not (project / "syndicate.db").exists()


def test_engine_key_and_templates_are_made_once_even_from_many_threads(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNDICATE_SECRET_KEY", raising=False)
    rt = Runtime(load(project))
    start = threading.Barrier(8)
    seen: list[tuple[int, bytes, int]] = []

    def reader() -> None:
        start.wait()
        seen.append((id(rt.engine), rt.key, id(rt.templates)))

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8 and len(set(seen)) == 1
    if not os.environ.get("SYNDICATE_DATABASE_URL"):  # on PostgreSQL the test has a schema
        assert (project / "syndicate.db").exists()
    # The generated key was kept in the database: another runtime on it signs alike.
    other = Runtime(load(project))
    assert other.key == rt.key and other.engine is not rt.engine
    rt.close()
    other.close()


def test_the_environments_key_wins_over_the_generated_one(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNDICATE_SECRET_KEY", raising=False)
    generated = Runtime(load(project)).key
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", KEY)
    assert Runtime(load(project)).key == KEY.encode() != generated


def test_a_given_engine_is_used_and_the_database_is_not_opened_again(project: Path) -> None:
    cfg = load(project)
    engine = db.connect(cfg.database_url)
    assert Runtime(cfg, engine=engine).engine is engine


def test_transports_are_new_and_of_the_configured_kind(project: Path) -> None:
    rt = Runtime(load(project))
    first, second = rt.transport(), rt.transport()
    assert isinstance(first, OutboxTransport) and first is not second
    made: list[settings.Settings] = []
    custom = Runtime(rt.settings, transport_factory=lambda s: made.append(s) or first)
    assert custom.transport() is first and made == [rt.settings]


def test_the_clock_is_the_runtimes(project: Path) -> None:
    clock = Clock(utc(2026, 12, 1, 12))
    rt = Runtime(load(project), clock=clock)
    assert rt.now() == utc(2026, 12, 1, 12)
    clock.advance(minutes=5)
    assert rt.now() == utc(2026, 12, 1, 12, 5)
    real = Runtime(load(project)).now()
    assert isinstance(Runtime(load(project)).clock, SystemClock)
    assert abs((real - datetime.now(UTC)).total_seconds()) < 5


def test_the_daemon_lock_has_the_settings_heartbeat_and_the_runtimes_clock(
    project: Path,
) -> None:
    cfg = configure(project, **{"daemon__heartbeat_seconds": 7, "daemon__stale_after_missed": 4})
    clock = Clock(utc(2026, 12, 1, 12))
    lock = Runtime(cfg, clock=clock).daemon_lock()
    assert (lock.heartbeat_seconds, lock.stale_after_missed) == (7, 4)
    lock.acquire()
    try:
        with lock.engine.connect() as conn:
            holder = db.locks.lock_holder(conn)
        assert holder is not None
        if lock.engine.dialect.name == "sqlite":
            assert holder.heartbeat_at == clock.now()
        else:  # elected through PostgreSQL: the database's clock, never the runtime's
            assert abs((holder.heartbeat_at - datetime.now(UTC)).total_seconds()) < 60
    finally:
        lock.release()


def test_a_send_runs_on_the_runtimes_clock_and_transport(project: Path) -> None:
    """The daemon's jobs take the runtime: the date of every message is the runtime's time, and
    what the transport factory gives is what sends."""
    Blog(project).publish("Tuesday essay")
    cfg = configure(project, **{"channels.column__enabled": False})
    clock = Clock(utc(2026, 12, 1, 12))
    made: list[OutboxTransport] = []

    def factory(s: settings.Settings) -> OutboxTransport:
        made.append(OutboxTransport(s.path("outbox")))
        return made[-1]

    report = jobs.run_once(Runtime(cfg, clock=clock, transport_factory=factory))
    assert [s.sent for s in report.summaries] and made
    dates = {message["Date"].datetime for message in outbox(project)}
    assert dates == {utc(2026, 12, 1, 12)}


def test_the_web_app_keeps_the_runtime_it_was_given(project: Path) -> None:
    rt = Runtime(load(project))
    app = create_app(rt)
    assert app.state.runtime is rt
    assert app.state.web.engine is rt.engine and app.state.web.env is rt.templates


# Where the database, the key, the templates, the lock and the transport are made: runtime.py
# only (their definitions aside). Everything below the entrances takes the Runtime.
DERIVING = {"hmac_key", "make_environment", "lock_for", "ElectedLock", "RowLock", "make_transport"}


def _derivations(tree: ast.AST) -> int:
    """Calls that make an engine, key, Jinja environment, lock or transport."""
    count = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        # `syndicate db upgrade|current` look at the schema before any upgrade: upgrade=False.
        opens_database = (
            name == "connect"
            and isinstance(func, ast.Attribute)
            and getattr(func.value, "id", "") == "db"
            and not any(k.arg == "upgrade" for k in node.keywords)
        )
        count += name in DERIVING or opens_database
    return count


def test_nothing_but_the_runtime_derives_engine_key_templates_or_lock() -> None:
    found: dict[str, int] = {}
    for path in sorted((ROOT / "syndicate").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name in ("syndicate/runtime.py", "syndicate/scheduling/election.py"):
            continue  # the Runtime, and where the two kinds of daemon lock are chosen
        calls = _derivations(ast.parse(path.read_text(encoding="utf-8")))
        if calls:
            found[name] = calls
    assert found == {}


# Below the entrances, time that decides something is the runtime's clock (the database's own
# clock is for what the database must judge, such as leases and the daemon's lock row).
CLOCKED = ("syndicate/inbound", "syndicate/corrections", "syndicate/scheduling/approval.py")


def _reads_another_clock(tree: ast.AST) -> list[int]:
    """Lines calling `db.now()`, `datetime.now()` or `utc_now()`."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            if called in ("db.now", "datetime.now", "utc_now", "time.time"):
                lines.append(node.lineno)
    return lines


def test_below_the_entrances_time_is_read_from_the_runtimes_clock() -> None:
    found = {}
    for where in CLOCKED:
        root = ROOT / where
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            lines = _reads_another_clock(ast.parse(path.read_text(encoding="utf-8")))
            if lines:
                found[path.relative_to(ROOT).as_posix()] = lines
    assert found == {}


def test_a_reply_is_filed_and_forwarded_on_the_runtimes_clock(tmp_path: Path) -> None:
    """The pipeline takes the runtime: the author's copy of a reply is dated by its clock and
    leaves through its transport factory, signed tokens are read with its key."""
    from syndicate.inbound import pipeline
    from tests.support.inbound import KEY as FIXTURES_KEY
    from tests.support.inbound import fixture, sent_project

    project = sent_project(tmp_path / "project")
    cfg = load(project)
    clock = Clock(utc(2031, 3, 4, 5, 6))
    made: list[OutboxTransport] = []

    def factory(s: settings.Settings) -> OutboxTransport:
        made.append(OutboxTransport(tmp_path / "elsewhere" / "outbox"))
        return made[-1]

    rt = Runtime(cfg, key=FIXTURES_KEY.encode(), clock=clock, transport_factory=factory)
    outcome = pipeline.process(rt, fixture("gmail_en.eml"), source="test")
    assert (outcome.kind.value, outcome.state.value) == ("comment", "forwarded")
    assert len(made) == 1
    [forwarded] = outbox(tmp_path / "elsewhere")
    assert forwarded["Date"].datetime == clock.now()
    with rt.engine.connect() as conn:
        reply = db.replies.get_reply(conn, outcome.reply_id)
    assert reply is not None and db.as_utc(reply.forwarded_at) == clock.now()
    rt.close()
