"""Running `syndicate` the way an MTA does: as `nobody`, PATH=/usr/bin:/bin, no HOME, umask 077,
none of syndicate's environment variables, working directory `/`."""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

PIPE_USER = "nobody"
PIPE_ENV = {"PATH": "/usr/bin:/bin"}
_INTERPRETER: list[str] = []


def can_switch_user() -> bool:
    return os.geteuid() == 0


def as_pipe_user(*paths: Path) -> None:
    """What the README asks of the sysadmin: the database, its folder and outbox/ belong to the
    user the pipe runs as (only possible, and only needed, when the tests run as root)."""
    if not can_switch_user():
        return
    user = pwd.getpwnam(PIPE_USER)
    for path in paths:
        for item in [path, *(path.rglob("*") if path.is_dir() else [])]:
            os.chown(item, user.pw_uid, user.pw_gid)


def run_as_pipe_user(
    argv: list[str], stdin: bytes = b"", timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    switch = can_switch_user()
    return subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        env=PIPE_ENV,
        cwd="/",
        umask=0o077,
        user=PIPE_USER if switch else None,
        group=pwd.getpwnam(PIPE_USER).pw_gid if switch else None,
        extra_groups=[] if switch else None,
        timeout=timeout,
    )


def pipe_interpreter() -> str:
    """A Python the pipe user can execute that imports this checkout's syndicate.

    This venv's interpreter, when the pipe user may run it; else (a pyenv under /root, as on
    the development machine: the README's warning) a throwaway venv of the system's Python of
    the same version whose site-packages point at this venv's (compiled modules share the ABI).
    """
    if _INTERPRETER:
        return _INTERPRETER[0]
    python = sys.executable
    if can_switch_user():
        try:
            usable = run_as_pipe_user([python, "-c", "import syndicate"], timeout=60).returncode
        except PermissionError:
            usable = 126
        if usable != 0:
            python = _bridge_venv()
    _INTERPRETER.append(python)
    return python


def _bridge_venv() -> str:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system_python = shutil.which(version, path="/usr/bin:/bin")
    if system_python is None:
        raise RuntimeError(f"no /usr/bin/{version} the pipe user could run")
    folder = Path(tempfile.mkdtemp(prefix="syndicate-pipe-venv-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    subprocess.run([system_python, "-m", "venv", "--without-pip", str(folder)], check=True)
    purelib = Path(sysconfig.get_paths()["purelib"])
    [site_packages] = (folder / "lib").glob("python*/site-packages")
    (site_packages / "this_checkout.pth").write_text(
        f"import site; site.addsitedir({str(purelib)!r})\n"
    )
    for item in [folder, *folder.rglob("*")]:
        item.chmod(item.stat().st_mode | 0o555 if item.is_dir() else item.stat().st_mode | 0o444)
    return str(folder / "bin" / "python")
