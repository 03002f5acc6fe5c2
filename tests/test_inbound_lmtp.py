"""The daemon's LMTP socket: `syndicate inbound receive` hands each message to it when
`syndicate run` listens (no Python start's worth of libraries per message), and an MTA can
deliver to it directly. Real sockets, the real daemon where the process is the point, the real
database (both of them); the pipe's rules hold: 250 for whatever was recorded, 4xx (exit 75) on
a transient problem, fallback to filing in-process when the daemon cannot answer."""

from __future__ import annotations

import contextlib
import json
import signal
import smtplib
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syndicate import db, settings_digest
from syndicate import settings as settings_module
from syndicate.inbound.sources import handover, lmtp
from syndicate.runtime import Runtime
from syndicate.scheduling.daemon import Daemon
from tests.support.cli import process
from tests.support.inbound import KEY, cli, cli_process, edit, env
from tests.support.waiting import became_true

REPLY = (
    b"From: Ann Reader <ann@example.org>\r\nTo: replies@example.com\r\n"
    b"Subject: Re: the column\r\nMessage-ID: <%s@example.org>\r\n\r\nThank you.\r\n"
)


def reply(name: str) -> bytes:
    return REPLY % name.encode()


def listed(project: Path) -> list[dict]:
    result = cli(project, "replies", "list", "--json")
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def stored_size(project: Path, reply_id: int) -> int:
    settings = settings_module.load(project / "settings.toml")
    engine = db.connect(settings.database_url)
    try:
        with engine.connect() as conn:
            row = db.replies.get_reply(conn, reply_id)
            assert row is not None
            return int(row.size)
    finally:
        engine.dispose()


@contextlib.contextmanager
def opened(project: Path) -> Iterator[Runtime]:
    """The project's Runtime, as `syndicate run` opens it (after the test's edits)."""
    rt = Runtime(settings_module.load(project / "settings.toml"))
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def runtime(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", KEY)
    with opened(project) as rt:
        yield rt


def digest_of(rt: Runtime) -> str | None:
    """The settings digest `syndicate run` would have recorded for this runtime's settings."""
    return settings_digest.of(rt.settings.base_dir / "settings.toml")


@contextlib.contextmanager
def serving(rt: Runtime) -> Iterator[lmtp.Listener]:
    """The listener as the daemon starts it (lmtp.start), on the project's socket."""
    started = lmtp.start(rt, settings_digest=digest_of(rt))
    assert started is not None
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def listener(runtime: Runtime) -> Iterator[lmtp.Listener]:
    with serving(runtime) as started:
        yield started


def socket_of(project: Path) -> Path:
    return project / "syndicate.lmtp"


def test_the_defaults_the_pipe_reads_itself_match_the_settings() -> None:
    inbound = settings_module.Inbound()
    assert handover.DEFAULT_CONFIG == settings_module.DEFAULT_CONFIG
    assert (
        inbound.lmtp_socket,
        inbound.max_message_bytes,
        inbound.lmtp_timeout_seconds,
    ) == (handover.DEFAULT_SOCKET, handover.DEFAULT_MAX_BYTES, handover.DEFAULT_TIMEOUT)
    assert inbound.lmtp_socket_mode == 0o600


def test_the_pipe_hands_over_to_the_running_daemon_which_stops_cleanly(project: Path) -> None:
    daemon = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(project / "settings.toml"), "run"],
        cwd=project,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    path = socket_of(project)
    try:
        if not became_true(path.exists):
            daemon.kill()
            pytest.fail(f"no socket: {daemon.communicate()}")
        # Owner-only, from its first connection on.
        assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o600
        first = cli_process(project, "inbound", "receive", stdin=reply("handed-1"))
        again = cli_process(project, "inbound", "receive", stdin=reply("handed-1"))
        daemon.send_signal(signal.SIGTERM)
        _, log = daemon.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert first.returncode == 0, first.stderr.decode()
    [filed] = listed(project)
    assert first.stderr.decode() == f"reply {filed['id']}: unmatched, filed\n"
    assert again.returncode == 0
    assert again.stderr.decode() == f"reply {filed['id']}: unmatched, filed (already recorded)\n"
    assert (filed["sender"], filed["text"], filed["source"]) == (
        "ann@example.org",
        "Thank you.",
        "stdin",
    )
    # The daemon filed it (its log says so), and stopped cleanly, taking its socket away.
    assert f"stdin from ann@example.org → reply {filed['id']}" in log, log
    assert daemon.returncode == 0 and "syndicate daemon stopped" in log
    assert not path.exists()


def test_postfix_style_delivery_gets_one_answer_per_recipient(
    project: Path, listener: lmtp.Listener
) -> None:
    with smtplib.LMTP(str(listener.path), local_hostname="mx.example.com", timeout=30) as client:
        assert client.ehlo()[0] == 250
        assert client.mail("ann@example.org")[0] == 250
        assert client.rcpt("replies@example.com")[0] == 250
        assert client.rcpt("letters@example.com")[0] == 250
        code, text = client.data(reply("two-rcpts"))
        second = client.getreply()
    [filed] = listed(project)
    line = f"2.0.0 reply {filed['id']}: unmatched, filed".encode()
    assert (code, text) == (250, line)
    assert second == (250, line)
    assert filed["source"] == "lmtp"


def test_a_message_over_the_limit_is_recorded_as_refused_by_lmtp_and_by_the_pipe(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", KEY)
    edit(project / "settings.toml", "max_message_bytes = 10000000", "max_message_bytes = 4000")
    big = reply("too-large") + b"x" * 70 + b"\r\n" + (b"y" * 5000 + b"\r\n") * 20
    piped = big.replace(b"too-large", b"too-large-piped")
    with opened(project) as rt, serving(rt) as started:
        handed = cli_process(project, "inbound", "receive", stdin=piped)
        with smtplib.LMTP(str(started.path), local_hostname="mx.example.com", timeout=30) as c:
            c.ehlo()
            c.mail("ann@example.org")
            c.rcpt("replies@example.com")
            code, text = c.data(big)
    assert handed.returncode == 0, handed.stderr.decode()
    by_source = {r["source"]: r for r in listed(project)}
    # In-process, as today: the pipe's log line (no syslog here), then its outcome.
    said = handed.stderr.decode().splitlines()
    assert said[-1] == f"reply {by_source['stdin']['id']}: refused, refused"
    assert (code, text.decode()) == (
        250,
        f"2.0.0 reply {by_source['lmtp']['id']}: refused, refused",
    )
    for filed in by_source.values():
        assert filed["kind"] == "refused" and "max_message_bytes" in filed["reason"]
    # Only the first 4001 bytes were kept, but every byte was counted.
    assert stored_size(project, by_source["stdin"]["id"]) == len(piped)
    assert stored_size(project, by_source["lmtp"]["id"]) == len(big)


def test_input_that_is_not_an_email_gets_554_by_lmtp_and_exit_65_from_the_pipe(
    project: Path, listener: lmtp.Listener
) -> None:
    with smtplib.LMTP(str(listener.path), local_hostname="mx.example.com", timeout=30) as client:
        client.ehlo()
        client.mail("")
        client.rcpt("replies@example.com")
        code, text = client.data(b"\x00\x01 not mail\r\n")
    assert code == 554 and b"not an email message" in text
    piped = cli_process(project, "inbound", "receive", stdin=b"\x00\x01 not mail")
    assert piped.returncode == 65
    assert piped.stderr.decode() == handover.stdin.NOT_AN_EMAIL + "\n"
    assert listed(project) == []


def test_database_down_gives_451_to_each_recipient_and_exit_75_to_the_pipe(
    project: Path, runtime: Runtime
) -> None:
    down = Runtime(
        runtime.settings,
        engine=db.connect("postgresql+psycopg://nobody@127.0.0.1:1/none", upgrade=False),
    )
    started = lmtp.start(down, settings_digest=digest_of(runtime))
    assert started is not None
    try:
        with smtplib.LMTP(str(started.path), local_hostname="mx.example.com", timeout=30) as c:
            c.ehlo()
            c.mail("ann@example.org")
            c.rcpt("replies@example.com")
            c.rcpt("letters@example.com")
            first = c.data(reply("db-down"))
            second = c.getreply()
        piped = cli_process(project, "inbound", "receive", stdin=reply("db-down-pipe"))
    finally:
        started.stop()
    for code, text in (first, second):
        assert code == 451 and text.startswith(b"4.3.0 temporary failure, retry later: ")
    assert piped.returncode == 75
    [line] = piped.stderr.decode().splitlines()
    assert line.startswith("syndicate inbound receive: temporary failure, retry later: ")
    assert "127.0.0.1" in line  # the database's own words: where it could not connect


def test_no_socket_or_a_stale_one_and_the_pipe_files_the_message_itself(project: Path) -> None:
    path = socket_of(project)
    assert not path.exists()
    alone = cli_process(project, "inbound", "receive", stdin=reply("no-socket"))
    # A killed daemon's socket file: nothing listens on it.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    assert stat.S_ISSOCK(path.stat().st_mode)
    refused = cli_process(project, "inbound", "receive", stdin=reply("stale-socket"))
    assert (alone.returncode, refused.returncode) == (0, 0), refused.stderr.decode()
    assert {r["source"] for r in listed(project)} == {"stdin"}
    assert len(listed(project)) == 2


def test_a_pipe_with_other_settings_files_the_message_itself_not_into_the_daemons_database(
    project: Path, listener: lmtp.Listener
) -> None:
    # Another database for the pipe (an MTA's environment, a test): the daemon would file the
    # message in its own, where `replies list` with the pipe's settings never finds it.
    other = {**env(), "SYNDICATE_DATABASE_URL": f"sqlite:///{project / 'other.db'}"}
    piped = process(project, "inbound", "receive", stdin=reply("other-db"), env=other)
    assert piped.returncode == 0, piped.stderr.decode()
    assert listed(project) == []  # not in the daemon's database
    theirs = process(project, "replies", "list", "--json", env=other)
    [filed] = json.loads(theirs.stdout)
    assert piped.stderr.decode() == f"reply {filed['id']}: unmatched, filed\n"
    assert filed["text"] == "Thank you." and filed["source"] == "stdin"
    # The same pipe with the daemon's settings is handed over (and filed in its database).
    handed = cli_process(project, "inbound", "receive", stdin=reply("same-db"))
    assert handed.returncode == 0 and [r["source"] for r in listed(project)] == ["stdin"]


def test_the_socket_says_whether_an_askers_settings_are_the_daemons(
    listener: lmtp.Listener,
) -> None:
    assert listener.settings_digest is not None
    with smtplib.LMTP(str(listener.path), local_hostname="mx.example.com", timeout=30) as c:
        c.ehlo()
        wrong = c.docmd("XSETTINGS", "0" * 64)
        status_then = c.docmd("XSTATUS", "e30=")
        right = c.docmd("XSETTINGS", listener.settings_digest)
    assert wrong[0] == 451 and b"not the daemon's" in wrong[1]
    assert status_then[0] == 502  # this listener answers no status (the daemon's does)
    assert right == (250, b"2.0.0 the daemon's settings")
    # An MTA delivers without XSETTINGS: its message is filed as ever.
    with smtplib.LMTP(str(listener.path), local_hostname="mx.example.com", timeout=30) as c:
        c.ehlo()
        c.mail("ann@example.org")
        c.rcpt("replies@example.com")
        assert c.data(reply("by-mta"))[0] == 250


def test_a_daemon_replaces_a_stale_socket_but_not_a_live_one_or_another_file(
    runtime: Runtime, project: Path
) -> None:
    path = socket_of(project)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    first = lmtp.start(runtime)
    assert first is not None
    try:
        with pytest.raises(lmtp.ListenerError, match="another process listens there"):
            lmtp.bind(path, 0o600)
    finally:
        first.stop()
    path.write_text("not a socket")
    with pytest.raises(lmtp.ListenerError, match="exists and is not a socket"):
        lmtp.bind(path, 0o600)
    assert path.read_text() == "not a socket"


def test_the_socket_mode_is_the_setting_and_a_world_writable_folder_is_refused(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "run"
    folder.mkdir(mode=0o750)
    sock = lmtp.bind(folder / "s", 0o660)
    try:
        assert stat.S_IMODE((folder / "s").stat().st_mode) == 0o660
    finally:
        sock.close()
    folder.chmod(0o777)
    with pytest.raises(lmtp.ListenerError, match="anyone may write to this folder"):
        lmtp.bind(folder / "t", 0o600)
    with pytest.raises(lmtp.ListenerError, match="longer than a socket path may be"):
        lmtp.bind(tmp_path / ("x" * 120), 0o600)


def test_a_listener_that_never_answers_costs_the_timeout_then_the_pipe_files_it(
    project: Path,
) -> None:
    edit(project / "settings.toml", "lmtp_timeout_seconds = 30", "lmtp_timeout_seconds = 1")
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(str(socket_of(project)))
    mute.listen(4)  # connections queue; nobody ever greets them
    try:
        started = time.monotonic()
        result = cli_process(project, "inbound", "receive", stdin=reply("mute"))
        took = time.monotonic() - started
    finally:
        mute.close()
    assert result.returncode == 0, result.stderr.decode()
    [filed] = listed(project)
    assert result.stderr.decode() == f"reply {filed['id']}: unmatched, filed\n"
    assert took >= 1  # it did wait for the greeting, as long as the setting says


class LosesTheAnswer:
    """Between the pipe and the listener: passes everything on, but hangs up instead of passing
    on the answer to DATA (as if the daemon was stopped just after filing the message)."""

    def __init__(self, front: Path, back: Path) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(front))
        self.server.listen(1)
        self.back = back
        self.thread = threading.Thread(target=self.relay, daemon=True)
        self.thread.start()

    def relay(self) -> None:
        client, _ = self.server.accept()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(str(self.back))
        pump = threading.Thread(target=self.pump, args=(client, upstream), daemon=True)
        pump.start()
        with client, upstream:
            while data := upstream.recv(65536):
                if b" reply " in data:
                    # shutdown, not only close: the pump's recv() on it holds the socket open,
                    # and the pipe would wait its whole timeout for an end it never sees.
                    client.shutdown(socket.SHUT_RDWR)
                    return
                client.sendall(data)

    @staticmethod
    def pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)


def test_a_message_filed_by_the_daemon_whose_answer_was_lost_is_already_recorded(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No Message-ID and bare LF line ends: recognised again by its bytes as handed over.
    raw = b"From: ann@example.org\nTo: replies@example.com\nSubject: hi\n\nNo id here.\n"
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", KEY)
    real = project / "real.lmtp"
    edit(project / "settings.toml", 'lmtp_socket = "syndicate.lmtp"', 'lmtp_socket = "real.lmtp"')
    with opened(project) as rt:
        # The pipe reaches the listener through the relay; the listener's settings are the
        # pipe's (the digest is taken as the listener starts, after this edit).
        edit(
            project / "settings.toml", 'lmtp_socket = "real.lmtp"', 'lmtp_socket = "syndicate.lmtp"'
        )
        with serving(rt):
            relay = LosesTheAnswer(socket_of(project), real)
            try:
                result = cli_process(project, "inbound", "receive", stdin=raw)
            finally:
                relay.server.close()
    assert result.returncode == 0, result.stderr.decode()
    [filed] = listed(project)
    assert result.stderr.decode() == f"reply {filed['id']}: unmatched, filed (already recorded)\n"
    assert filed["text"] == "No id here."


def test_a_malformed_session_is_answered_and_the_next_one_is_served(
    project: Path, listener: lmtp.Listener
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(10)
        raw.connect(str(listener.path))
        replies = raw.makefile("rb")
        assert replies.readline().startswith(b"220 ")
        for line, expected in (
            (b"HELO x", b"500"),
            (b"MAIL FROM:<a@b.c>", b"503"),  # LHLO first
            (b"LHLO x", b"250"),
            (b"DATA", b"503"),  # no recipient yet
            (b"\xff\xfe\x00 binary", b"500"),
            (b"MAIL FROM:<a@b.c>", b"250"),
            (b"RCPT TO:<replies@example.com>", b"250"),
            (b"DATA", b"354"),
        ):
            raw.sendall(line + b"\r\n")
            while True:
                answer = replies.readline()
                if answer[3:4] != b"-":
                    break
            assert answer.startswith(expected), (line, answer)
        raw.sendall(b"Subject: cut off\r\n\r\nhalf a mess")  # and hangs up mid-message
    with smtplib.LMTP(str(listener.path), local_hostname="mx.example.com", timeout=30) as client:
        client.ehlo()
        client.mail("ann@example.org")
        client.rcpt("replies@example.com")
        code, _ = client.data(reply("after-the-junk"))
    assert code == 250
    assert [r["subject"] for r in listed(project)] == ["Re: the column"]


def test_the_daemon_serves_the_socket_while_it_runs_and_removes_it_when_it_stops(
    runtime: Runtime,
) -> None:
    daemon = Daemon(runtime)
    path = runtime.settings.path(runtime.settings.inbound.lmtp_socket)
    running = threading.Thread(target=daemon.serve)
    running.start()
    try:
        assert became_true(path.exists)
        with smtplib.LMTP(str(path), local_hostname="mx.example.com", timeout=30) as client:
            assert client.ehlo()[0] == 250
    finally:
        daemon.stop.set()
        running.join(timeout=60)
    assert not running.is_alive() and not path.exists()


def test_an_empty_setting_turns_the_listener_off(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", KEY)
    edit(project / "settings.toml", 'lmtp_socket = "syndicate.lmtp"', 'lmtp_socket = ""')
    with opened(project) as rt:
        assert lmtp.start(rt) is None
    assert not socket_of(project).exists()


def test_the_pipe_recognises_only_its_own_command_line() -> None:
    parse = handover.parse_argv
    assert parse(["inbound", "receive"]) == handover.Request(Path("settings.toml"), ())
    assert parse(["-c", "a.toml", "-vv", "-q", "inbound", "receive", "-r", "x@y", "-rz@y"]) == (
        handover.Request(Path("a.toml"), ("x@y", "z@y"))
    )
    assert parse(["--config=b.toml", "inbound", "receive", "--recipient=x@y"]) == (
        handover.Request(Path("b.toml"), ("x@y",))
    )
    for other in (
        ["inbound", "receive", "--help"],
        ["inbound", "poll"],
        ["--config"],
        ["inbound", "receive", "-r"],
        ["status", "receive"],
        ["--bogus", "inbound", "receive"],
    ):
        assert parse(other) is None, other


def test_a_settings_file_the_pipe_cannot_read_leaves_the_message_to_the_in_process_path(
    tmp_path: Path,
) -> None:
    assert handover.target(tmp_path / "missing.toml") is None
    bad = tmp_path / "bad.toml"
    bad.write_text('[inbound]\nmax_message_bytes = "big"\n')
    assert handover.target(bad) is None
    off = tmp_path / "off.toml"
    off.write_text('[inbound]\nlmtp_socket = ""\n')
    assert handover.target(off) == handover.Target(None, 10_000_000, 30.0)


def test_the_fast_path_reads_stdin_bounded(tmp_path: Path) -> None:
    import io

    from syndicate.inbound.sources import stdin

    data = b"a" * 200_000
    kept, size = stdin.read_bounded(io.BytesIO(data), 1000)
    assert (kept, size) == (data[:1001], 200_000)
    assert stdin.read_bounded(io.BytesIO(b"short"), 1000) == (b"short", 5)
