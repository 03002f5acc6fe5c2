"""Worker benchmark: one send on PostgreSQL, sent by 1 worker and then by 2 side by side.

    python bench/workers.py --admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

A real relay is latency-bound, so the SMTP sink (aiosmtpd) answers each DATA after 20 ms. The
sink runs in `--sink-processes` processes of its own (2) listening on one port (SO_REUSEPORT),
so one asyncio loop does not cap two workers; each run prints the CPU the sink used (its
busiest process, in % of one core) to show it was not the bottleneck.

Each run gets a new database and sends one post to `--recipients` readers (20,000) with
`syndicate send latest` started once, then twice at the same time (the second joins the first:
they claim batches with FOR UPDATE SKIP LOCKED). Every worker uses the same number of SMTP
connections. Prints msg/s for each (measured at the sink, first to last DATA) and their ratio
(target ≥ 1.8), and per recipient what the sink received: lost (never received) and
duplicated (received more than once) must both be 0.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiosmtpd.smtp import SMTP  # noqa: E402
from sqlalchemy import make_url  # noqa: E402

from tests.conftest import free_port  # noqa: E402


class SlowSink:
    """Answers each DATA after `delay` seconds and counts every recipient it accepted."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received: Counter[str] = Counter()
        self.first = self.last = 0.0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        await asyncio.sleep(self.delay)
        now = time.monotonic()
        with self.lock:
            self.first = self.first or now
            self.last = now
            self.received.update(address.lower() for address in envelope.rcpt_tos)
        return "250 OK"

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.first = self.last = 0.0


def _serve_sink(port: int, delay: float, commands: Connection) -> None:
    """One sink process: aiosmtpd on a socket shared with the other sink processes; answers
    `commands` ("reset", "report") from a thread while its loop serves SMTP."""
    sink = SlowSink(delay)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(256)
    sock.setblocking(False)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(loop.create_server(lambda: SMTP(sink, hostname="127.0.0.1"), sock=sock))

    def answer() -> None:
        while True:
            command = commands.recv()
            if command == "reset":
                sink.reset()
                commands.send("ok")
            elif command == "report":
                with sink.lock:
                    commands.send((dict(sink.received), sink.first, sink.last, time.process_time()))
            else:
                loop.call_soon_threadsafe(loop.stop)
                return

    threading.Thread(target=answer, daemon=True).start()
    loop.run_forever()


class Sinks:
    """`count` sink processes on one port; the kernel spreads the connections among them."""

    def __init__(self, port: int, delay: float, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for _ in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve_sink, args=(port, delay, theirs), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)
        self.received: Counter[str] = Counter()
        self.first = self.last = 0.0
        self.cpu: list[float] = [0.0] * count
        self.busiest = 0.0  # the busiest sink process's CPU seconds in the last run
        self.reset()  # every process has its socket listening once it answers

    def reset(self) -> None:
        for pipe in self.pipes:
            pipe.send("reset")
        for pipe in self.pipes:
            pipe.recv()
        self.collect()

    def collect(self) -> None:
        """What every sink process received: counts per recipient, first and last DATA."""
        self.received = Counter()
        firsts, lasts, used = [], [], []
        for n, pipe in enumerate(self.pipes):
            pipe.send("report")
            received, first, last, cpu = pipe.recv()
            used.append(cpu - self.cpu[n])
            self.cpu[n] = cpu
            self.received.update(received)
            if first:
                firsts.append(first)
                lasts.append(last)
        self.first, self.last = min(firsts, default=0.0), max(lasts, default=0.0)
        self.busiest = max(used)

    def stop(self) -> None:
        for pipe in self.pipes:
            pipe.send("stop")
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()


def admin_command(admin_url: str, sql: str) -> None:
    import psycopg

    url = make_url(admin_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def make_project(folder: Path, recipients: int, port: int, connections: int) -> list[str]:
    for name in ("templates", "subscribers", "examples"):
        shutil.copytree(ROOT / name, folder / name)
    addresses = [f"reader{n:07d}@bench.example.com" for n in range(recipients)]
    lines = ["email,name", *(f"{a},Reader {n}" for n, a in enumerate(addresses))]
    (folder / "subscribers" / "readers.csv").write_text("\n".join(lines) + "\n")
    text = (ROOT / "settings.toml").read_text(encoding="utf-8")
    for old, new in (
        ('first_run = "newest"', 'first_run = "none"'),
        ('kind = "outbox"', 'kind = "smtp"'),
        ('host = "localhost"\nport = 587', f'host = "127.0.0.1"\nport = {port}'),
        ('security = "starttls"', 'security = "none"'),
        ("connections = 2", f"connections = {connections}"),
    ):
        assert old in text, old
        text = text.replace(old, new, 1)
    (folder / "settings.toml").write_text(text, encoding="utf-8")
    return addresses


def syndicate(folder: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(folder / "settings.toml"), *args],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def run(
    admin_url: str, sink: Sinks, port: int, workers: int, recipients: int, connections: int
) -> tuple[float, int, int, float]:
    """One send by `workers` processes; returns (msg/s at the sink, lost, duplicated, the
    sink's busiest process's CPU in % of one core while the messages arrived)."""
    database = f"syndicate_bench_workers_{os.getpid()}_{workers}"
    admin_command(admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    admin_command(admin_url, f'CREATE DATABASE "{database}"')
    scratch = Path(tempfile.mkdtemp(prefix="syndicate-bench-workers-"))
    try:
        folder = scratch / "project"
        addresses = make_project(folder, recipients, port, connections)
        env = dict(os.environ)
        env["SYNDICATE_DATABASE_URL"] = (
            make_url(admin_url).set(database=database).render_as_string(hide_password=False)
        )
        env["XDG_STATE_HOME"] = str(scratch / "state")
        prepare = syndicate(folder, env, "-q", "run", "--once")  # lists and posts, sends none
        if prepare.wait() != 0:
            raise SystemExit(f"run --once failed: {prepare.stderr.read().decode()[-2000:]}")
        sink.reset()
        processes = [syndicate(folder, env, "-q", "send", "latest") for _ in range(workers)]
        for process in processes:
            if process.wait() != 0:
                raise SystemExit(f"send failed: {process.stderr.read().decode()[-2000:]}")
        sink.collect()
        received = dict(sink.received)
        rate = sum(received.values()) / max(sink.last - sink.first, 1e-9)
        lost = sum(1 for a in addresses if a not in received)
        duplicated = sum(1 for n in received.values() if n > 1)
        busy = 100 * sink.busiest / max(sink.last - sink.first, 1e-9)
        return rate, lost, duplicated, busy
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        admin_command(admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _load() -> str:
    """The 1-minute load average, as uptime prints it."""
    return f"{os.getloadavg()[0]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("SYNDICATE_TEST_POSTGRES_URL", ""),
        help="a PostgreSQL administrator's URL (default: $SYNDICATE_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections a worker")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="the sink's DATA answer")
    parser.add_argument("--sink-processes", type=int, default=2, help="processes of the sink")
    args = parser.parse_args()
    if not args.admin_url:
        raise SystemExit("give --admin-url (or set SYNDICATE_TEST_POSTGRES_URL)")
    port = free_port()
    sink = Sinks(port, args.delay_ms / 1000, args.sink_processes)
    try:
        figures = {}
        print(f"{os.cpu_count()} CPU(s); load average {_load()} before the first run")
        for workers in (1, 2):
            before = _load()
            rate, lost, duplicated, busy = run(
                args.admin_url, sink, port, workers, args.recipients, args.connections
            )
            figures[workers] = rate
            print(
                f"{workers} worker(s) x {args.connections} connections: {rate:8.1f} msg/s   "
                f"lost {lost}   duplicated {duplicated}   ({args.recipients:,} readers)   "
                f"sink {busy:3.0f} % of a core   load average {before} -> {_load()}"
            )
        print(f"ratio 2 workers / 1 worker: {figures[2] / figures[1]:.2f} (target >= 1.8)")
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
