"""`syndicate inbound receive` as an MTA runs it: as `nobody`, with PATH=/usr/bin:/bin, no HOME,
umask 077 and none of syndicate's environment variables. The key and database URL files give it
the daemon's secrets; a mismatch shows in `syndicate status`; empty or binary input is refused
with exit 65 and one plain sentence; a too-large message is recorded with exit 0 (never
bounced); a forward that failed from the pipe is retried by the daemon."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syndicate import db
from syndicate import settings as settings_module
from syndicate.cli import inbound as inbound_cli
from syndicate.db.meta import KeyUse
from syndicate.inbound.sources import stdin
from syndicate.models import ReplyState
from syndicate.runtime import Runtime
from syndicate.scheduling.daemon import Daemon
from tests.conftest import free_port
from tests.support.inbound import (
    KEY,
    cli,
    cli_process,
    edit,
    fixture,
    load,
    replies,
    sent_project,
    set_url_file,
    use_smtp,
)
from tests.support.pipe import PIPE_USER, as_pipe_user, pipe_interpreter, run_as_pipe_user
from tests.support.postgres import database_url_of


def token_only(name: str) -> bytes:
    """A fixture reply that names its reader by the Reply-To token alone (no In-Reply-To)."""
    raw = fixture(name)
    return re.sub(rb"(?m)^(In-Reply-To|References):.*\n", b"", raw)


@pytest.fixture
def project() -> Iterator[Path]:
    """A sent project in a folder `nobody` can reach (pytest's own tmp folder is 0700)."""
    top = Path(tempfile.mkdtemp(prefix="syndicate-pipe-"))
    top.chmod(0o755)
    try:
        yield sent_project(top / "project")
    finally:
        shutil.rmtree(top, ignore_errors=True)


def pipe(project: Path, raw: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    """The command line of the README's alias, run the way Postfix's local(8) runs it."""
    argv = [pipe_interpreter(), "-m", "syndicate", "--config", str(project / "settings.toml")]
    return run_as_pipe_user([*argv, "inbound", "receive", *args], raw)


def write_secret(path: Path, value: str) -> None:
    path.write_text(value + "\n")
    path.chmod(0o600)
    as_pipe_user(path)


def test_without_a_key_file_the_pipe_uses_another_key_and_status_says_so(project: Path) -> None:
    as_pipe_user(project)
    result = pipe(project, token_only("gmail_en.eml"))
    assert result.returncode == 0, result.stderr.decode()
    [reply] = replies(project)
    assert reply["kind"] == "unmatched"  # the daemon's key is in its environment only

    status = cli(project, "status")
    warning = status.stderr.decode()
    assert "different keys" in warning and "key_file" in warning, warning
    assert f"syndicate inbound receive as {pwd.getpwuid(os.geteuid()).pw_name}" in warning or (
        f"syndicate inbound receive as {PIPE_USER}" in warning
    )
    assert "syndicate run as" in warning
    data = json.loads(cli(project, "status", "--json").stdout)
    assert len({use["fingerprint"] for use in data["key_mismatch"]}) == 2


def test_with_key_and_database_url_files_the_pipe_files_a_token_only_reply(project: Path) -> None:
    secrets_dir = project / "secrets"
    secrets_dir.mkdir()
    write_secret(secrets_dir / "secret.key", KEY)
    # The URL file points at the daemon's database by absolute path, as it would in /etc.
    write_secret(secrets_dir / "database-url", database_url_of(project))
    config = project / "settings.toml"
    edit(config, 'key_file = ""', 'key_file = "secrets/secret.key"')
    set_url_file(config, "secrets/database-url")
    edit(config, 'url = "sqlite:///syndicate.db"', 'url = "sqlite:///elsewhere.db"')
    as_pipe_user(project)

    result = pipe(project, token_only("gmail_en.eml"))
    assert result.returncode == 0, result.stderr.decode()
    assert not (project / "elsewhere.db").exists()
    [reply] = replies(project)
    assert (reply["kind"], reply["state"], reply["recipient"]) == ("comment", "forwarded", 1)
    assert list((project / "outbox").glob("reply*jane@example.com.eml"))
    status = cli(project, "status")
    assert "different keys" not in status.stderr.decode()


def test_a_key_file_every_user_can_read_or_none_at_all_is_one_clear_line(project: Path) -> None:
    config = project / "settings.toml"
    edit(config, 'key_file = ""', 'key_file = "secret.key"')
    result = cli(project, "status")
    assert result.returncode == 1
    assert "secret.key: secrets.key_file names a file that does not exist" in (
        result.stderr.decode()
    )
    (project / "secret.key").write_text(KEY + "\n")
    (project / "secret.key").chmod(0o644)
    result = cli(project, "status")
    assert result.returncode == 1
    assert b"readable by every user" in result.stderr and b"Traceback" not in result.stderr
    # From the pipe the same problem is temporary: the MTA keeps the message until it is fixed.
    result = cli_process(project, "inbound", "receive", stdin=fixture("gmail_en.eml"))
    assert result.returncode == stdin.EX_TEMPFAIL
    assert b"readable by every user" in result.stderr
    (project / "secret.key").chmod(0o600)
    result = cli_process(project, "inbound", "receive", stdin=token_only("gmail_en.eml"))
    assert result.returncode == 0, result.stderr.decode()
    assert replies(project)[0]["kind"] == "comment"


@pytest.mark.parametrize(
    "raw",
    [b"", b"\n\r\n  \n", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, b"Subject: hi\0\x01\n\nx"],
    ids=["empty", "blank", "png", "nul-in-header"],
)
def test_empty_or_binary_stdin_is_refused_with_65_and_not_filed(project: Path, raw: bytes) -> None:
    run = cli_process if raw.startswith(b"\x89PNG") else cli  # one real process is enough
    result = run(project, "inbound", "receive", stdin=raw)
    assert result.returncode == stdin.EX_DATAERR
    assert result.stderr.decode() == stdin.NOT_AN_EMAIL + "\n"
    assert result.stdout == b""
    assert replies(project) == []


def test_a_too_large_message_is_recorded_with_exit_0_so_the_mta_bounces_nothing(
    project: Path,
) -> None:
    """The MTA's bounce would go to the envelope sender, which anyone can forge: a message we
    recorded (even refused for its size, From one of our readers) is never bounced."""
    edit(project / "settings.toml", "max_message_bytes = 10000000", "max_message_bytes = 2000")
    raw = fixture("gmail_fr.eml") + b"\n" + b"x" * 3000 + b"\n"
    result = cli_process(project, "inbound", "receive", stdin=raw)
    assert result.returncode == stdin.EX_OK, result.stderr.decode()
    [reply] = replies(project)
    assert reply["kind"] == "refused"
    # Exit 0: the MTA shows the sender nothing (our log lines may precede the last line).
    assert result.stderr.decode().endswith(f"reply {reply['id']}: refused, refused\n")
    assert b"shorter" not in result.stderr


def test_classify_of_a_missing_file_is_one_line(project: Path) -> None:
    result = cli(project, "inbound", "classify", str(project / "nope.eml"))
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "nope.eml: cannot read it (No such file or directory)" in lines[0]


def test_a_forward_that_failed_from_the_pipe_is_retried_by_the_daemon(
    project: Path, smtp_server
) -> None:
    controller, handler = smtp_server
    use_smtp(project, free_port())  # nothing listens there yet
    result = cli_process(project, "inbound", "receive", stdin=fixture("apple_en.eml"))
    assert result.returncode == 0, result.stderr.decode()
    [reply] = replies(project)
    assert reply["state"] == ReplyState.FORWARD_PENDING.value

    edit(project / "settings.toml", "port = ", f"port = {controller.port}\n# was: port = ")
    settings, engine, _ = load(project)
    daemon = Daemon(Runtime(settings, engine=engine))
    assert daemon.inbox is None  # no mailbox: the pipe is the only entrance
    jobs = {job.id: job for job in daemon.build_scheduler().get_jobs()}
    assert jobs["retry_forwards"].trigger.interval.total_seconds() == 60 * 5  # inbox_minutes
    daemon.lock.acquire()
    try:
        daemon.job_retry_forwards()
    finally:
        daemon.lock.release()
    assert [m.rcpt_tos for m in handler.messages] == [["jane@example.com"]]
    with engine.connect() as conn:
        assert db.replies.get_reply(conn, reply["id"]).state == ReplyState.FORWARDED.value


def test_the_files_win_over_the_environment(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "key").write_text("key-from-the-file-0123456789abcdef\n")
    (project / "url").write_text("sqlite:////srv/from-the-file.db\n")
    for name in ("key", "url"):
        (project / name).chmod(0o600)
    config = project / "settings.toml"
    set_url_file(config, "")
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", "key-from-the-environment-0123456789abcdef")
    monkeypatch.setenv("SYNDICATE_DATABASE_URL", "sqlite:////srv/from-the-environment.db")
    settings = settings_module.load(config)
    assert settings.hmac_key_from_env() == b"key-from-the-environment-0123456789abcdef"
    assert settings.database_url == "sqlite:////srv/from-the-environment.db"
    edit(config, 'key_file = ""', 'key_file = "key"')
    set_url_file(config, "url")
    settings = settings_module.load(config)
    assert settings.hmac_key_from_env() == b"key-from-the-file-0123456789abcdef"
    assert settings.database_url == "sqlite:////srv/from-the-file.db"


def test_while_receiving_logs_go_to_syslog_and_stderr_keeps_the_sentence(
    project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "log"))
    listener.settimeout(10)
    monkeypatch.setattr(inbound_cli, "SYSLOG_SOCKET", str(tmp_path / "log"))
    edit(project / "settings.toml", "max_message_bytes = 10000000", "max_message_bytes = 2000")
    raw = fixture("gmail_fr.eml") + b"\n" + b"x" * 3000 + b"\n"
    try:
        result = cli(project, "inbound", "receive", stdin=raw)
        record = listener.recv(65536)
    finally:
        listener.close()
    assert result.returncode == stdin.EX_OK
    # Only the one line for the MTA's log: the log record went to syslog, not to stderr.
    assert result.stderr.decode() == "reply 1: refused, refused\n"
    # <20>: facility mail (2 × 8) + severity warning (4), as syslog reads it.
    assert record.startswith(b"<20>syndicate: ") and b"refused a message" in record


def test_an_entrance_not_heard_from_for_30_days_is_left_out_of_the_comparison() -> None:
    now = datetime(2026, 12, 2, tzinfo=UTC)

    def use(name: str, fingerprint: str, days_ago: float) -> KeyUse:
        at = now - timedelta(days=days_ago)
        return KeyUse(name, fingerprint, at, at)

    rotated = [use("syndicate run as syndicate", "new", 0), use("syndicate serve", "new", 1)]
    assert db.meta.key_mismatch([*rotated, use("old pipe", "old", 31)]) == []
    recent = [*rotated, use("inbound receive as nobody", "old", 29)]
    assert {u.entrance for u in db.meta.key_mismatch(recent)} == {
        "syndicate run as syndicate",
        "syndicate serve",
        "inbound receive as nobody",
    }
    assert db.meta.key_fingerprint(b"a" * 32) == db.meta.key_fingerprint(b"a" * 32)
    assert db.meta.key_fingerprint(b"a" * 32) != db.meta.key_fingerprint(b"b" * 32)
    assert "a" * 12 not in db.meta.key_fingerprint(b"a" * 32)
