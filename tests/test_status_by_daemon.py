"""`syndicate status` answered by the running daemon (cli/by_daemon.py): the asker starts without
SQLAlchemy, pydantic or Typer and prints what the command run in-process would print, on its
own terminal; the daemon answers only its own user, and only an asker whose settings are its
own (same file, unchanged, same environment). Real daemon process, real socket, real pty."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from syndicate import settings_digest
from syndicate.cli import by_daemon
from tests.support.inbound import env
from tests.support.project import set_setting
from tests.support.waiting import became_true
from tests.test_cli_startup import HEAVY, IN_PROCESS

# Any SYNDICATE_ variable is part of the settings digest: an asker with one more is answered
# in-process, which is how these tests get the in-process answer to compare with.
IN_PROCESS_ENV = {"SYNDICATE_ASK_NO_DAEMON": "1"}
# The daemon line's heartbeat may move between two askings.
SYSTEM_PYTHON = "/usr/bin/python3"
AS_NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
HEARTBEAT = re.compile(r"last heartbeat .*")


@pytest.fixture
def daemon(project: Path) -> Iterator[dict[str, str]]:
    """`syndicate run` on the project, after one pass (two sends to list); yields the
    environment to ask it with. The daemon itself runs with FORCE_COLOR=1: what it writes for
    an asker follows the asker's terminal, never the daemon's own environment."""
    environ = {k: v for k, v in env().items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    once = subprocess.run(
        [sys.executable, "-m", "syndicate", "-q", "run", "--once"],
        cwd=project,
        env=environ,
        capture_output=True,
        timeout=120,
    )
    assert once.returncode == 0, once.stderr
    running = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "run"],
        cwd=project,
        env={**environ, "FORCE_COLOR": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if not became_true((project / "syndicate.lmtp").exists):
            running.kill()
            pytest.fail(f"no socket: {running.communicate()}")
        yield environ
    finally:
        running.send_signal(signal.SIGTERM)
        try:
            running.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            running.kill()


def asked(project: Path, environ: dict[str, str], *args: str) -> dict:
    """`syndicate status ARGS` in a fresh interpreter: exit code, stdout, every module."""
    done = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, *args],
        cwd=project,
        env=environ,
        capture_output=True,
        timeout=60,
    )
    *printed, summary = done.stdout.decode().splitlines()
    return {**json.loads(summary), "stdout": printed, "stderr": done.stderr.decode()}


def answered_by_daemon(result: dict) -> bool:
    return not {m.split(".")[0] for m in result["modules"]} & (HEAVY | {"typer", "click"})


def test_the_daemon_answers_status_as_the_command_would_without_the_heavy_libraries(
    project: Path, daemon: dict[str, str]
) -> None:
    for args in (("status",), ("status", "--json")):
        fast = asked(project, daemon, *args)
        slow = asked(project, {**daemon, **IN_PROCESS_ENV}, *args)
        assert fast["code"] == slow["code"] == 0, (fast["stderr"], slow["stderr"])
        assert answered_by_daemon(fast), fast["modules"]
        assert "sqlalchemy" in slow["modules"]  # the comparison is with the real thing
        if args == ("status",):
            fast_text = HEARTBEAT.sub("", "\n".join(fast["stdout"]))
            assert fast_text == HEARTBEAT.sub("", "\n".join(slow["stdout"]))
            assert "Daemon: running on" in fast_text and "Recent sends" in fast_text
            assert "\x1b" not in fast_text  # piped: plain, whatever the daemon's FORCE_COLOR
        else:
            fast_data, slow_data = (json.loads("\n".join(r["stdout"])) for r in (fast, slow))
            for data in (fast_data, slow_data):
                data["daemon"].pop("heartbeat_at")
            assert fast_data == slow_data
            assert len(fast_data["recent"]) == 2


def test_on_a_terminal_the_answer_has_its_width_and_colours(
    project: Path, daemon: dict[str, str]
) -> None:
    def on_pty(environ: dict[str, str]) -> bytes:
        leader, follower = pty.openpty()
        command = [sys.executable, "-m", "syndicate", "status"]
        with subprocess.Popen(
            command, cwd=project, env=environ, stdout=follower, stderr=follower
        ) as running:
            os.close(follower)
            output = b""
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the command ended and closed its side
                    break
                if not chunk:
                    break
                output += chunk
            running.wait(timeout=60)
        os.close(leader)
        return re.sub(rb"last heartbeat .*", b"", output)

    narrow = {**daemon, "COLUMNS": "72", "TERM": "xterm-256color"}
    narrow.pop("NO_COLOR", None)
    fast, slow = on_pty(narrow), on_pty({**narrow, **IN_PROCESS_ENV})
    assert fast == slow
    assert b"\x1b[" in fast  # coloured: the daemon wrote for a terminal
    # The tables take the terminal's width (rich's least is 76 here), not the 120 columns a
    # pipe gets.
    rules = [
        line.strip(b"\r")
        for line in re.sub(rb"\x1b\[[0-9;]*m", b"", fast).splitlines()
        if "─".encode() in line
    ]
    assert rules and all(len(line.decode()) <= 80 for line in rules), fast.decode()


def test_another_settings_file_state_or_environment_is_answered_in_process(
    project: Path, daemon: dict[str, str]
) -> None:
    assert answered_by_daemon(asked(project, daemon, "status"))
    changed = asked(project, {**daemon, "SYNDICATE_DATABASE_URL": "sqlite:///other.db"}, "status")
    assert changed["code"] == 0 and not answered_by_daemon(changed)
    assert "Recent sends: none" in changed["stdout"]  # that database's status, not the daemon's
    # The settings file changed since the daemon read it: what it says may no longer hold.
    settings = project / "settings.toml"
    settings.write_text(settings.read_text() + "\n")
    edited = asked(project, daemon, "status")
    assert edited["code"] == 0 and not answered_by_daemon(edited)
    assert any(line.startswith("Daemon: running on") for line in edited["stdout"])


def test_the_daemon_answers_its_own_user_only_and_only_for_its_own_settings(
    project: Path,
) -> None:
    # The system's Python: another user may not enter this one's folders.
    if os.geteuid() != 0 or not shutil.which("setpriv") or not Path(SYSTEM_PYTHON).exists():
        pytest.skip("needs root, setpriv and /usr/bin/python3 to ask as another user")
    folder = Path(tempfile.mkdtemp(prefix="syndicate-status-"))
    try:
        folder.chmod(0o755)
        socket_path = folder / "d.lmtp"
        settings = project / "settings.toml"
        text = settings.read_text()
        assert 'lmtp_socket = "syndicate.lmtp"' in text and "lmtp_socket_mode = 0o600" in text
        text = text.replace('lmtp_socket = "syndicate.lmtp"', f'lmtp_socket = "{socket_path}"')
        settings.write_text(text.replace("lmtp_socket_mode = 0o600", "lmtp_socket_mode = 0o666"))
        running = subprocess.Popen(
            [sys.executable, "-m", "syndicate", "run"],
            cwd=project,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert became_true(socket_path.exists)
            ask = (
                "import smtplib, sys\n"
                "c = smtplib.LMTP(sys.argv[1]); c.ehlo()\n"
                "print(c.docmd('XSETTINGS', 'x')[0], c.docmd('XSTATUS', 'e30=')[0])\n"
            )
            stranger = subprocess.run(
                [*AS_NOBODY, SYSTEM_PYTHON, "-I", "-c", ask, str(socket_path)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            owner = subprocess.run(
                [SYSTEM_PYTHON, "-I", "-c", ask, str(socket_path)],
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            running.send_signal(signal.SIGTERM)
            running.wait(timeout=60)
        assert stranger.stdout.split() == ["550", "550"], stranger.stderr
        assert owner.stdout.split() == ["451", "451"], owner.stderr  # ours, not our settings
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_asker_recognises_only_status_and_its_json_option() -> None:
    assert by_daemon.parse_argv(["status"]) == by_daemon.Request(Path("settings.toml"), False)
    assert by_daemon.parse_argv(["-c", "x.toml", "-q", "status", "--json"]) == (
        by_daemon.Request(Path("x.toml"), True)
    )
    for argv in (["status", "--help"], ["sends"], ["status", "--jsonx"], ["--help", "status"]):
        assert by_daemon.parse_argv(argv) is None


def test_no_daemon_and_the_command_answers_itself(project: Path) -> None:
    result = asked(project, env(), "status")
    assert result["code"] == 0 and not answered_by_daemon(result)
    assert "Daemon: not running" in "\n".join(result["stdout"])
    with pytest.raises((OSError, smtplib.SMTPException)):
        by_daemon.ask(project / "syndicate.lmtp", "digest", {}, 1)


def test_a_terminal_that_cannot_show_the_answer_gets_the_in_process_command(
    project: Path, daemon: dict[str, str]
) -> None:
    # The example post's title has an em dash, which ASCII cannot show: nothing is written, the
    # Typer app answers (its own way). The same asker on UTF-8 streams is answered.
    script = (
        "import io, sys\n"
        "from syndicate.cli import by_daemon\n"
        "for encoding in ('ascii', 'utf-8'):\n"
        "    out, err = (io.TextIOWrapper(io.BytesIO(), encoding=encoding) for _ in 'oe')\n"
        "    code = by_daemon.main(['status'], out, err)\n"
        "    out.flush()\n"
        "    print(encoding, code, len(out.buffer.getvalue()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=project,
        env=daemon,
        capture_output=True,
        text=True,
        timeout=60,
    )
    ascii_line, utf8_line = done.stdout.splitlines()
    assert ascii_line == "ascii None 0", done.stderr
    encoding, code, size = utf8_line.split()
    assert (encoding, code) == ("utf-8", "0") and int(size) > 100


def test_the_digest_changes_with_what_settings_read(project: Path) -> None:
    config = project / "settings.toml"
    base = {"HOME": "/home/a", "PATH": "/usr/bin"}
    first = settings_digest.of(config, base)
    assert first is not None and first == settings_digest.of(config, {**base, "PATH": "/bin"})
    for changed in (
        {**base, "HOME": "/home/b"},  # `~` in a path
        {**base, "SYNDICATE_DATABASE_URL": "sqlite:///x.db"},
        {**base, "SYNDICATE_SECRET_KEY": "k" * 40},
    ):
        assert settings_digest.of(config, changed) != first
    assert settings_digest.of(project / "missing.toml", base) is None
    # A variable the file names, whatever its name.
    set_setting(config, 'hmac_key_env = "SYNDICATE_SECRET_KEY"', 'hmac_key_env = "MY_KEY"')
    named = settings_digest.of(config, {**base, "MY_KEY": "a" * 40})
    assert named is not None and named != settings_digest.of(config, {**base, "MY_KEY": "b" * 40})
