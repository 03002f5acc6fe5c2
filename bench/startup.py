"""How fast each command starts: wall time (median of several runs), CPU time and peak RSS, next
to a bare `python -c pass` measured in the same run, with the targets of issue 13 beside them.

On a busy machine wall time mostly measures the queue for a CPU: read the CPU column (user +
system time of the child, the smallest of the runs) and the "over pass" column (median wall
time minus that of `python -c pass` in the same run) as the figures that travel. The load
average is printed first.

Run by hand from a checkout with the package installed:

    .venv/bin/python bench/startup.py            # 7 runs per command
    .venv/bin/python bench/startup.py --runs 15

Each command runs as `python -m syndicate …` in a fresh project folder made by `syndicate init`
(the database is created by a warm-up run first, so what is timed is a start on an existing
project). `inbound receive` files a small reply (a new Message-ID each run), as an MTA pipe does:
first with no daemon (it files the reply itself), then handed over to a `syndicate run` started
for the purpose (its LMTP socket). `status` likewise runs in-process, then answered by that
daemon (cli/by_daemon.py). The two floor rows are what filing in-process cannot go below,
with nothing of syndicate: importing SQLAlchemy and running one query on the project's SQLite
file; and importing the three libraries every in-process `status` or `receive` needs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Case:
    label: str
    args: list[str]
    target_seconds: float | None = None
    target_rss_mb: float | None = None
    reply: bool = False  # feed a small reply on stdin
    daemon: bool = False  # with `syndicate run` listening on the project's LMTP socket


FLOOR = (
    "import sqlalchemy; "
    "sqlalchemy.create_engine('sqlite:///syndicate.db').connect()"
    ".execute(sqlalchemy.text('select count(*) from replies')).scalar()"
)
# What an in-process `status` or `receive` imports before any code of syndicate's runs: the
# command line (Typer, which itself imports pydantic to coerce options), the typed settings
# (pydantic) and the database (SQLAlchemy).
LIBRARIES = "import typer, typer._adapters, pydantic, sqlalchemy"
RECEIVE = ["-m", "syndicate", "inbound", "receive"]
CASES = [
    Case("python -c pass", ["-c", "pass"]),
    Case("syndicate --help", ["-m", "syndicate", "--help"], 0.25, 60),
    Case("syndicate status, in-process", ["-m", "syndicate", "status"], 0.4),
    Case("syndicate status, by the daemon", ["-m", "syndicate", "status"], 0.4, daemon=True),
    Case("floor: sqlalchemy + 1 query", ["-c", FLOOR]),
    Case("floor: typer+pydantic+sqlalchemy", ["-c", LIBRARIES]),
    Case("inbound receive, in-process", RECEIVE, 0.5, reply=True),
    Case("inbound receive, handed over", RECEIVE, 0.5, reply=True, daemon=True),
]

REPLY = (
    "From: Ann Reader <ann@example.org>\r\n"
    "To: replies@example.com\r\n"
    "Subject: Re: this week's column\r\n"
    "Message-ID: <{n}.startup-bench@example.org>\r\n"
    "Date: Wed, 02 Dec 2026 03:00:00 +0000\r\n"
    "\r\n"
    "Thank you for the column.\r\n"
)


# As an installed syndicate runs: with its modules' bytecode cached (pip compiles it at install;
# a checkout writes __pycache__ on the warm-up run). A shell with PYTHONDONTWRITEBYTECODE=1 would
# compile every syndicate module from source at each start (~30 ms more for `status`, measured
# 2026-12-02 with python -X importtime).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    rss_mb: float


def run_once(case: Case, folder: Path, n: int) -> Run:
    stdin = REPLY.format(n=f"{time.time_ns()}.{n}").encode() if case.reply else b""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *case.args],
        cwd=folder,
        env=CHILD_ENV,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None
    process.stdin.write(stdin)
    process.stdin.close()
    # wait4 gives this child's own peak RSS (getrusage(RUSAGE_CHILDREN) would give the
    # largest of all children so far).
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{case.label}: exit status {process.returncode} in {folder}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


@contextlib.contextmanager
def daemon(folder: Path) -> Iterator[None]:
    """`syndicate run` in the project, until its LMTP socket is there; stopped by SIGTERM."""
    running = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "-q", "run"],
        cwd=folder,
        env=CHILD_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (folder / "syndicate.lmtp").exists():
            if running.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("syndicate run did not open its LMTP socket")
            time.sleep(0.1)
        time.sleep(3)  # its first feed poll and sends are done: it waits, idle
        yield
    finally:
        running.send_signal(signal.SIGTERM)
        running.wait(timeout=60)


def project(root: Path) -> Path:
    folder = root / "project"
    subprocess.run(
        [sys.executable, "-m", "syndicate", "init", str(folder), "--email", "me@example.com"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per command (default 7)")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="syndicate-startup-") as tmp:
        folder = project(Path(tmp))
        import syndicate

        print(f"python {sys.version.split()[0]}, syndicate from {Path(syndicate.__file__).parent}")
        print(f"load average {Path('/proc/loadavg').read_text().split(' ', 3)[:3]}")
        print(f"{runs} runs per command, median wall time; peak RSS is the largest of the runs\n")
        print(
            f"{'command':<32}{'median s':>10}{'min s':>8}{'over pass':>11}{'cpu s':>8}"
            f"{'RSS MB':>8}   target"
        )
        baseline = 0.0
        for case in CASES:
            with daemon(folder) if case.daemon else contextlib.nullcontext():
                run_once(case, folder, -1)  # warm-up: creates the database, fills the cache
                measured = [run_once(case, folder, n) for n in range(runs)]
            median = statistics.median(m.seconds for m in measured)
            if case is CASES[0]:
                baseline = median
            rss = max(m.rss_mb for m in measured)
            targets, missed = [], False
            if case.target_seconds is not None:
                targets.append(f"<= {case.target_seconds} s")
                missed |= median > case.target_seconds
            if case.target_rss_mb is not None:
                targets.append(f"< {case.target_rss_mb} MB")
                missed |= rss >= case.target_rss_mb
            if targets:
                targets.append("MISSED" if missed else "met")
            note = "(baseline)" if case is CASES[0] else "(floor of in-process)"
            print(
                f"{case.label:<32}{median:>10.3f}{min(m.seconds for m in measured):>8.3f}"
                f"{median - baseline:>+11.3f}{min(m.cpu_seconds for m in measured):>8.3f}"
                f"{rss:>8.1f}   {', '.join(targets) or note}"
            )


if __name__ == "__main__":
    main()
