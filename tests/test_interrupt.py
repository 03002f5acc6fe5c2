"""Interruptions never double a reader's copy.

- Ctrl-C (SIGINT) or SIGTERM in `send` or `run --once`: the batch in flight is finished and
  recorded, one line says what was done and how to resume, the exit status is 130 or 143, and
  the resumed send gives nobody a second copy.
- kill -9: the journal (delivery/journal.py) records each message as the server accepts it, so
  the next run re-sends at most the message each connection had in flight.

Every send here is the real `syndicate` command in a subprocess against a real aiosmtpd server
in the test process that counts each recipient it accepted.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import make_url

from syndicate import db, settings
from syndicate.delivery import dispatch, journal, workers
from syndicate.delivery.transports import make_transport
from syndicate.feedwatch import watch
from syndicate.models import DeliveryState, RecipientKind
from syndicate.runtime import Runtime
from tests.conftest import running_smtp, set_setting
from tests.support.cli import run_cli
from tests.support.delivery import FaultyHandler, add_readers, newsletter_send, use_smtp
from tests.support.postgres import database_url_of

SYNDICATE = (sys.executable, "-m", "syndicate")
SEND = ("send", "latest", "--channel", "newsletter")
CONNECTIONS = 2


@pytest.fixture
def counting_server():
    with running_smtp(FaultyHandler()) as server:
        yield server


def _start(project: Path, *command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SYNDICATE, "--config", str(project / "settings.toml"), "-q", *command],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )


# The real command, `syndicate.cli.main()` as `python -m syndicate` runs it, with its imports
# and cssutils' first-use regular expressions (~2 s of CPU together) done before it is told to
# go: eleven starts must fit in the test's minute.
_PREWARMED = (
    "import sys, pathlib; from syndicate.cli import main; "
    "from syndicate.render.email import inline_css; "
    "css = pathlib.Path('templates/email/style.css').read_text(); "
    "inline_css(f'<html><head><style>{css}</style></head><body><p>.</p></body></html>'); "
    "sys.stdin.readline(); main()"
)


def _prewarmed(project: Path, *command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _PREWARMED, "--config", str(project / "settings.toml"), *command],
        cwd=project,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )


def _go(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.flush()


def _accepted(handler: FaultyHandler | CountingSink) -> int:
    with handler.lock:
        return sum(handler.delivered.values())


def _wait_for(
    handler: FaultyHandler | CountingSink, count: int, process: subprocess.Popen[str]
) -> None:
    deadline = time.monotonic() + 60
    while _accepted(handler) < count:
        assert process.poll() is None, f"the send ended first: {process.communicate()}"
        assert time.monotonic() < deadline, "the send made no progress"
        time.sleep(0.002)


def _readers(project: Path, added: list[str]) -> set[str]:
    listed = (project / "subscribers/readers.csv").read_text().splitlines()[1:]
    return set(added) | {line.split(",")[0] for line in listed}


def _journal_lines(engine) -> list[journal.Accepted]:
    return journal.Journal.for_engine(engine).entries()


@pytest.mark.parametrize(
    ("command", "signum", "status"),
    [(SEND, signal.SIGINT, 130), (("run", "--once"), signal.SIGTERM, 143)],
    ids=["send-ctrl-c", "run-once-sigterm"],
)
def test_a_signal_finishes_the_batch_in_flight_and_the_resume_sends_no_copy(
    project: Path, counting_server, command: tuple[str, ...], signum: int, status: int
) -> None:
    controller, handler = counting_server
    use_smtp(project, controller.port, batch_size=40, connections=CONNECTIONS)
    _cfg, engine, send_id = newsletter_send(project)
    readers = _readers(project, add_readers(engine, 600))

    process = _start(project, *command)
    _wait_for(handler, 200, process)
    process.send_signal(signum)
    out, errors = process.communicate(timeout=60)

    assert process.returncode == status, errors
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    name = signal.Signals(signum).name
    with engine.connect() as conn:
        counts = db.deliveries.delivery_counts(conn, send_id)
    sent, left = counts["sent"], counts["pending"]
    assert lines[0] == (
        f"Interrupted by {name}: the batch in flight was finished and recorded; {sent:,} "
        f"message(s) sent in this run, {left:,} still to send. Run 'syndicate --config "
        f"{project / 'settings.toml'} -q {' '.join(command)}' to resume; nobody gets a message "
        "twice."
    )
    # Everything the server accepted is recorded, nothing is left claimed.
    assert sent == _accepted(handler) and 200 <= sent < len(readers)
    assert set(counts) == {"sent", "pending"}
    assert _journal_lines(engine) == []

    resumed = _start(project, *command)
    out, errors = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, errors
    assert readers <= set(handler.delivered)  # (run --once also sends the editors' column)
    assert max(handler.delivered.values()) == 1  # nobody got a second copy
    with engine.connect() as conn:
        assert db.deliveries.delivery_counts(conn, send_id) == {"sent": len(readers)}


class _SlowHandler(FaultyHandler):
    """Takes 20 ms per message, so a batch of 40 over 2 connections is in flight for 0.4 s."""

    async def handle_DATA(self, server, session, envelope) -> str:
        await asyncio.sleep(0.02)
        return await super().handle_DATA(server, session, envelope)


def test_a_second_ctrl_c_stops_at_once_and_the_journal_keeps_copies_single(
    project: Path,
) -> None:
    with running_smtp(_SlowHandler()) as (controller, handler):
        use_smtp(project, controller.port, batch_size=40, connections=CONNECTIONS)
        _cfg, engine, send_id = newsletter_send(project)
        readers = _readers(project, add_readers(engine, 300))
        _twice_interrupted_then_resumed(project, handler)
    assert set(handler.delivered) == readers
    assert sum(n - 1 for n in handler.delivered.values()) <= CONNECTIONS
    with engine.connect() as conn:
        assert db.deliveries.delivery_counts(conn, send_id) == {"sent": len(readers)}


def _twice_interrupted_then_resumed(project: Path, handler: FaultyHandler) -> None:
    process = _start(project, *SEND)
    _wait_for(handler, 100, process)
    process.send_signal(signal.SIGINT)
    time.sleep(0.1)  # the first one handled: the second finds the default action
    process.send_signal(signal.SIGINT)
    out, errors = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGINT, (out, errors)
    assert "finishing the batch in flight" in errors and "Interrupted" not in out

    resumed = _start(project, *SEND)
    out, errors = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, errors


class CountingSink:
    """A minimal SMTP sink, like Postfix's smtp-sink, that counts each recipient it accepts.

    aiosmtpd reads a message line by line in Python (~1 ms for our 33 KB); this reads DATA in
    one C-level search, so the kill test spends its CPU on the sender. A message
    counts the moment before its 250 is written: a sender killed after that never saw it.
    """

    def __init__(self) -> None:
        self.delivered: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._session, "127.0.0.1", 0, limit=1 << 22)
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 sink ESMTP\r\n")
        recipients: list[str] = []
        try:
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(b"250-sink\r\n250 8BITMIME\r\n")
                elif verb == b"RCPT":
                    recipients.append(line.split(b"<", 1)[1].split(b">", 1)[0].decode())
                    writer.write(b"250 ok\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await reader.readuntil(b"\r\n.\r\n")
                    with self.lock:
                        self.delivered.update(recipients)
                    recipients = []
                    writer.write(b"250 accepted\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    break
                else:  # HELO, MAIL (a new envelope), RSET, NOOP
                    if verb in (b"MAIL", b"RSET"):
                        recipients = []
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the sender was killed
        finally:
            writer.close()


@pytest.fixture
def sink():
    server = CountingSink()
    try:
        yield server
    finally:
        server.close()


READERS_FOR_KILLS = 2_000
KILLS = 10
BATCH = 50


def test_ten_kill_9s_lose_nobody_and_double_at_most_one_message_per_connection(
    project: Path, sink: CountingSink
) -> None:
    """Each kill is a sample of one instant: 1 to 2 x BATCH accepted messages after the last
    kill, then up to 10 ms more, so anywhere in a batch's cycle (claiming, composing, at DATA,
    between the server's answer and its journal line, at the commit). Ten such samples over a
    2,000-reader send check what twenty over 10,000 did: each kill costs a process start and an
    edition render (~2 s of CPU), and the readers beyond those the kills reach only made the
    last run longer."""
    handler = sink
    use_smtp(project, sink.port, batch_size=BATCH, connections=CONNECTIONS)
    _cfg, engine, send_id = newsletter_send(project)
    readers = _readers(project, add_readers(engine, READERS_FOR_KILLS))
    rng = random.Random(12)

    process = _prewarmed(project, "-q", *SEND)
    for _ in range(KILLS):
        _go(process)
        upcoming = _prewarmed(project, "-q", *SEND)
        _wait_for(handler, _accepted(handler) + rng.randint(1, 2 * BATCH), process)
        time.sleep(rng.random() * 0.01)  # a random moment, not just right after an answer
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL, "the send ended before it was killed"
        with engine.connect() as conn:
            counts = db.deliveries.delivery_counts(conn, send_id)
        # At most two batches claimed: one at the transport, the next being composed.
        assert counts.get("sending", 0) <= 2 * BATCH and counts.get("pending", 0) > 0, counts
        process = upcoming

    _go(process)
    out, errors = process.communicate(timeout=120)
    final = process
    assert final.returncode == 0, errors
    assert "sent, 0 deferred, 0 failed, 0 skipped" in " ".join(out.split())

    delivered = handler.delivered
    assert set(delivered) == readers  # 0 lost
    duplicates = sum(n - 1 for n in delivered.values())
    # Only a message between DATA and the server's answer can go twice: one per connection.
    print(f"{KILLS} kills: {duplicates} duplicate(s), 0 lost")
    assert duplicates <= CONNECTIONS * KILLS, duplicates
    with engine.connect() as conn:
        assert db.deliveries.delivery_counts(conn, send_id) == {"sent": len(readers)}
        assert db.sends.get_send(conn, send_id).state == "done"
    assert _journal_lines(engine) == []


def test_the_next_run_applies_the_journal_before_it_requeues(project: Path) -> None:
    """What a kill -9 leaves: claimed rows, some of them accepted by the server (journaled),
    and a last line cut short. The next start records the journaled ones as sent."""
    _cfg, engine, send_id = newsletter_send(project)
    add_readers(engine, 6)
    with engine.begin() as conn:
        db.deliveries.plan_deliveries(conn, send_id, RecipientKind.READER)
        claimed = [d for d, _ in db.deliveries.claim_batch(conn, send_id, 5)]
        deferred = claimed[4]
        db.deliveries.record_results(
            conn, [(deferred, DeliveryState.DEFERRED, "451 later", None, None)]
        )
    accepted = journal.Journal.for_engine(engine)
    if engine.dialect.name == "sqlite":
        assert accepted.path == Path(engine.url.database + ".accepted-journal")
    accepted.open()
    accepted.note(claimed[0], "<a@x>", "250 accepted")
    accepted.note(claimed[1], "<b@x>", "250\tok\nqueued")
    accepted.note(deferred, "<d@x>", "250 accepted")  # recorded since: keeps its state
    accepted.close()
    with accepted.path.open("a") as handle:
        handle.write(f"{claimed[2]}\t<c@x>")  # cut short by the kill: not accepted for sure

    assert dispatch.recover(engine, accepted) == 2
    rows = {
        row["id"]: row
        for row in engine.connect().execute(db.schema.deliveries.select()).mappings().all()
    }
    assert rows[claimed[0]]["state"] == "sent" and rows[claimed[0]]["message_id"] == "<a@x>"
    assert rows[claimed[1]]["detail"] == "250 ok queued"
    assert [rows[d]["state"] for d in claimed[2:]] == ["sending", "sending", "deferred"]
    assert accepted.path.read_bytes() == b""  # committed, so emptied
    with engine.begin() as conn:
        assert db.deliveries.requeue(conn, send_id, workers.gone) == (2, 1)


def test_journal_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert journal.path_for(make_url("sqlite://")) is None  # in memory: dies with us
    assert journal.path_for(make_url("sqlite:////srv/n.db")) == Path("/srv/n.db.accepted-journal")
    server = journal.path_for(make_url("postgresql+psycopg://u:secret@db.example/news"))
    assert server is not None and server.parent == tmp_path / "syndicate"
    assert "secret" not in server.name
    other = journal.path_for(make_url("postgresql+psycopg://u:secret@db.example/other"))
    assert other != server


class _JournalWatchingApi(ThreadingHTTPServer):
    """A SendGrid API stand-in that notes, at each request, how many lines the journal has."""

    def __init__(self, journal_path: Path) -> None:
        super().__init__(("127.0.0.1", 0), _WatchingHandler)
        self.journal_path = journal_path
        self.seen: list[int] = []


class _WatchingHandler(BaseHTTPRequestHandler):
    server: _JournalWatchingApi

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        path = self.server.journal_path
        self.server.seen.append(len(path.read_bytes().splitlines()) if path.exists() else 0)
        self.send_response(202)
        self.send_header("X-Message-Id", f"sg-{len(self.server.seen)}")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def journal_path_of(project: Path) -> Path:
    path = journal.path_for(make_url(database_url_of(project)))
    assert path is not None
    return path


def test_sendgrid_journals_each_request_as_its_answer_arrives(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = _JournalWatchingApi(journal_path_of(project))
    threading.Thread(target=api.serve_forever, daemon=True).start()
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.test-key")
    config = project / "settings.toml"
    set_setting(config, 'kind = "outbox"', 'kind = "sendgrid"')
    set_setting(config, 'reply_to = "shared"', 'reply_to = "per_recipient"')  # 1 per request
    set_setting(
        config,
        'host = "https://api.sendgrid.com"',
        f'host = "http://127.0.0.1:{api.server_address[1]}"',
    )
    cfg, engine, send_id = newsletter_send(project)
    assert journal.Journal.for_engine(engine).path == api.journal_path
    add_readers(engine, 5)
    try:
        runtime = Runtime(cfg, engine=engine)
        summary = dispatch.run_send(runtime, send_id, make_transport(cfg), batch_size=100)
    finally:
        api.shutdown()
        api.server_close()
    # All 5 in one batch: the answer to each request was journaled before the next went out.
    assert summary.sent == 5 and api.seen == list(range(5))
    assert _journal_lines(engine) == []


def test_each_test_copy_is_a_new_message(project: Path) -> None:
    cfg = settings.load(project / "settings.toml")
    watch.poll(db.connect(cfg.database_url), cfg)
    for _ in range(2):
        done = run_cli(project, "send", "latest", "--test", "me@example.org")
        assert done.returncode == 0, done.stderr
    copies = sorted((project / "outbox").glob("*.eml"))
    assert len(copies) == 2  # the second did not overwrite the first
    parsed = [BytesParser(policy=policy.default).parsebytes(c.read_bytes()) for c in copies]
    ids = [m["Message-ID"] for m in parsed]
    assert ids[0] != ids[1] and all(i.startswith("<syndicate.test.") for i in ids)
    assert [len(m.get_all("Message-ID")) for m in parsed] == [1, 1]
    assert all(m["Subject"].startswith("[TEST] ") for m in parsed)
