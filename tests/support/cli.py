"""The `syndicate` command against a project folder: in this process (fast: no interpreter start,
no imports again) or as a real process (where the process is the point: signals, kill -9, the
MTA pipe, the daemon lock, start-up).

In this process, `syndicate.cli.main()` runs exactly as `python -m syndicate` runs it (its
SyndicateError handling included) inside Typer's CliRunner isolation: stdin, stdout, stderr and
the environment are the test's own, the working directory is the project, and anything the
command changes in the process (logging, the CLI's state and its Runtime) is put back. An
uncaught exception is printed as the interpreter would print it, with exit status 1, so a test
that a command never shows a traceback can still fail.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

from typer.testing import CliRunner


def invoke(
    project: Path,
    *args: str,
    stdin: bytes | str = b"",
    env: Mapping[str, str | None] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """`syndicate --config PROJECT/settings.toml ARGS` in this process; bytes out, like a pipe."""
    from syndicate.cli import common, main

    argv = ["syndicate", "--config", str(project / "settings.toml"), *args]
    root = logging.getLogger()
    saved_logging = (root.level, list(root.handlers))
    saved_argv = sys.argv
    code = 0
    try:
        with (
            contextlib.chdir(project),
            CliRunner().isolation(input=stdin, env=env) as (stdout, stderr, _),
        ):
            sys.argv = argv
            try:
                main()
            except SystemExit as stop:
                code = _exit_status(stop)
            except Exception as error:  # what the interpreter would print at the top
                traceback.print_exception(error, file=sys.stderr)
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                _close(common)
            out, err = stdout.getvalue(), stderr.getvalue()
    finally:
        sys.argv = saved_argv
        root.setLevel(saved_logging[0])
        root.handlers[:] = saved_logging[1]
    return subprocess.CompletedProcess(argv, code, out, err)


def _close(common: ModuleType) -> None:
    """Close the Runtime the command opened and forget it, as the end of a process would."""
    runtime = common._state._runtime
    if runtime is not None:
        runtime.close()
    common._state = common.State()


def _exit_status(stop: SystemExit) -> int:
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code
    print(stop.code, file=sys.stderr)
    return 1


def run_cli(
    project: Path,
    *args: str,
    stdin: bytes | str = b"",
    env: Mapping[str, str | None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`invoke`, its output as text (what `subprocess.run(..., text=True)` gives)."""
    done = invoke(project, *args, stdin=stdin, env=env)
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def run_process(
    project: Path,
    *args: str,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """The real `syndicate` command, in a subprocess, against a project folder; its output as
    text. `env` is the whole environment (by default the test's)."""
    done = process(project, *args, stdin=stdin, env=env, timeout=timeout)
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def process(
    project: Path,
    *args: str,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    """`run_process`, its output as bytes (what an MTA's pipe gets)."""
    return subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(project / "settings.toml"), *args],
        cwd=project,
        input=stdin,
        capture_output=True,
        env=env,
        timeout=timeout,
    )


def ok(project: Path, *args: str) -> str:
    """What a command that must succeed printed on stdout (in this process)."""
    done = run_cli(project, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def refused(project: Path, *args: str) -> str:
    """The one line a refused command prints (exit 1, no traceback), without 'error: '."""
    done = run_cli(project, *args)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    lines = [
        line.strip() for line in done.stderr.splitlines() if line.strip().startswith("error: ")
    ]
    assert len(lines) == 1, done.stderr
    return lines[0].removeprefix("error: ")
