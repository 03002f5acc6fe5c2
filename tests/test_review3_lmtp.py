"""review3: the pipe's hand-over to the daemon's LMTP socket (inbound/sources/handover.py)."""

from __future__ import annotations

import io
import os
import resource
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import UnixSocketController
from aiosmtpd.lmtp import LMTP

from syndicate import settings as settings_module
from syndicate.inbound.sources import handover, lmtp
from syndicate.runtime import Runtime
from tests.support.inbound import cli_process, edit, env
from tests.test_inbound_lmtp import listed, opened, reply, runtime  # noqa: F401 (fixture)

NOBODY = 65534


class Squatter:
    """Someone else's LMTP server: says 250 to every message and keeps it."""

    def __init__(self) -> None:
        self.kept: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        self.kept.append(envelope.content)
        return "250 2.0.0 reply 1: answer, filed"


class LmtpController(UnixSocketController):
    def factory(self) -> LMTP:
        return LMTP(self.handler)


def test_the_pipe_never_hands_mail_to_a_socket_a_stranger_planted(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lmtp_socket in a world-writable folder (/tmp, say): the daemon refuses to listen there,
    but the pipe still hands every message to whatever socket another user put at that path,
    exits 0, and the message is never recorded."""
    public = tmp_path / "public"
    public.mkdir()
    public.chmod(0o1777)
    path = public / "syndicate.lmtp"
    edit(project / "settings.toml", 'lmtp_socket = "syndicate.lmtp"', f'lmtp_socket = "{path}"')
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", "inbound-fixtures-key-signs-tokens-0123")
    with opened(project) as rt:
        assert lmtp.start(rt) is None  # the daemon will not serve a folder anyone may write to
    squatter = Squatter()
    controller = LmtpController(squatter, unix_socket=str(path))
    controller.start()
    try:
        if os.geteuid() == 0:
            os.chown(path, NOBODY, NOBODY)  # it is another user's socket
        result = cli_process(project, "inbound", "receive", stdin=reply("planted"))
    finally:
        controller.stop()
    assert result.returncode == 0, result.stderr.decode()
    assert (squatter.kept, len(listed(project))) == ([], 1), result.stderr.decode()


def test_a_recipient_with_a_line_break_gets_one_line_not_a_traceback(
    project: Path,
    runtime: Runtime,  # noqa: F811
) -> None:
    """With the daemon listening, smtplib refuses an RCPT line holding CR or LF with ValueError,
    which the hand-over does not catch (only OSError, SMTPException, UnicodeError): exit 1 and a
    traceback, which Postfix's pipe(8) takes as a permanent error and quotes in the bounce;
    nothing recorded. (Without a listener the in-process path files it.)"""
    started = lmtp.start(runtime)
    assert started is not None
    try:
        result = cli_process(
            project,
            "inbound",
            "receive",
            "--recipient",
            "@\r\n",
            stdin=reply("crlf-recipient"),
        )
    finally:
        started.stop()
    err = result.stderr.decode()
    assert "Traceback" not in err and result.returncode == 0, err
    assert len(listed(project)) == 1


def test_the_pipe_looks_for_the_socket_where_the_daemon_puts_it(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """settings.path() expands '~' (every other path setting takes it); the pipe's tomllib
    reading does not, so with lmtp_socket = "~/…" the daemon listens where the pipe never looks
    and every message pays a full Python start (the feature silently off)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", "inbound-fixtures-key-signs-tokens-0123")
    edit(
        project / "settings.toml",
        'lmtp_socket = "syndicate.lmtp"',
        'lmtp_socket = "~/syndicate.lmtp"',
    )
    with opened(project) as rt:
        started = lmtp.start(rt)
        assert started is not None
        try:
            found = handover.target(project / "settings.toml")
            assert found is not None
            assert found.socket == started.path
        finally:
            started.stop()


def test_a_limit_the_settings_accept_but_the_pipe_cannot_read_never_truncates_a_message(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_message_bytes = 5e7 is 50 MB to the settings (pydantic takes the float), but
    handover.target() wants an int and returns None. The pipe used to read stdin bounded at the
    default 10 MB anyway and leave those bytes to the in-process `receive`, which judged the
    size against 50 MB: a 12 MB message was filed cut at 10 MB, as if whole."""
    edit(project / "settings.toml", "max_message_bytes = 10000000", "max_message_bytes = 5e7")
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", "inbound-fixtures-key-signs-tokens-0123")
    limit = settings_module.load(project / "settings.toml").inbound.max_message_bytes
    line = b"A" * 76 + b"\r\n"
    raw = reply("large").replace(b"Thank you.\r\n", line * (12_000_000 // len(line)))
    assert len(raw) <= limit  # within the limit: must be filed whole
    argv = ["--config", str(project / "settings.toml"), "inbound", "receive"]
    stream = io.BytesIO(raw)
    assert handover.main(argv, stream, io.StringIO()) is None  # in-process path
    # Nothing read here: the in-process path reads stdin with the limit the settings validate.
    assert handover.already_read is None and stream.tell() == 0


def _systemd_file_limit() -> None:
    """systemd's default for a service: 1,024 open files (soft)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))


def test_idle_sessions_on_the_socket_never_starve_the_daemon(project: Path) -> None:
    """Sessions are neither limited in number nor timed out before aiosmtpd's 300 s: 1,100 idle
    connections use up a daemon's 1,024 file descriptors (systemd's default), and then it can
    neither accept a session (the pipe waits its timeout, then pays a full start) nor open a
    database file, an SMTP connection or its journal for its sends."""
    daemon = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(project / "settings.toml"), "run"],
        cwd=project,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=(project / "daemon.log").open("w"),
        preexec_fn=_systemd_file_limit,
    )
    path = project / "syndicate.lmtp"
    idle: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 60
        while not path.exists():
            assert time.monotonic() < deadline and daemon.poll() is None, "no socket"
            time.sleep(0.1)
        for _ in range(1100):
            one = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            one.connect(str(path))
            idle.append(one)
        time.sleep(2)
        started = time.monotonic()
        code: int | str
        try:
            with smtplib.LMTP(str(path), local_hostname="mx.example.com", timeout=20) as client:
                client.ehlo()
                client.mail("ann@example.org")
                client.rcpt("replies@example.com")
                code, _ = client.data(reply("beside-idle-sessions"))
        except (OSError, smtplib.SMTPException) as exc:
            code = f"{type(exc).__name__} after {time.monotonic() - started:.0f} s"
    finally:
        for one in idle:
            one.close()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    log = (project / "daemon.log").read_text()
    assert code == 250, (code, log[-1000:])
    assert "Too many open files" not in log, log[-2000:]


def test_the_in_process_pipe_reads_with_the_limit_the_settings_validate(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same float limit, with the daemon off: the in-process `receive` reads stdin with the
    limit pydantic accepted (5e3 here), not the pipe's own default (made 1,000 here), so a
    2,000-byte message within the limit is filed whole, not cut at 1,001 bytes."""
    from tests.support.cli import invoke
    from tests.test_inbound_lmtp import stored_size

    edit(project / "settings.toml", "max_message_bytes = 10000000", "max_message_bytes = 5e3")
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", "inbound-fixtures-key-signs-tokens-0123")
    monkeypatch.setattr(handover, "DEFAULT_MAX_BYTES", 1_000)
    raw = reply("whole").replace(b"Thank you.\r\n", b"B" * 76 + b"\r\n" * 1 + b"C" * 1500 + b"\r\n")
    assert 1_001 < len(raw) <= 5_000
    done = invoke(project, "inbound", "receive", stdin=raw)
    assert done.returncode == 0, done.stderr
    [filed] = listed(project)
    assert "C" * 1500 in filed["text"]
    assert stored_size(project, filed["id"]) == len(raw)
