"""Worker benchmark: one send on PostgreSQL, sent by 1 worker and then by 2 side by side.

    python bench/workers.py --admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

A real relay is latency-bound, so the SMTP sink (aiosmtpd) answers each DATA after 20 ms. The
sink runs in `--sink-processes` processes of its own (2) listening on one port (SO_REUSEPORT),
so one asyncio loop does not cap two workers; its handler only counts recipients, and it reads
DATA in chunks (`--plain-sink`: aiosmtpd's own line-by-line reader, three times the CPU).

Each run also prints where the CPU went: CPU seconds per message of the worker processes
(start-up included), of each sink process and of the whole PostgreSQL server (when it runs on
this machine: its processes' /proc/PID/stat, ended children included), what those allow on
this machine's cores, and the share of all cores busy (/proc/stat) while the sink received;
from 90 % the run is marked SATURATED.

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
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiosmtpd.smtp import MISSING, SMTP, syntax  # noqa: E402
from sqlalchemy import make_url  # noqa: E402

from tests.conftest import free_port  # noqa: E402


class SlowSink:
    """Answers each DATA after `delay` seconds and counts every recipient it accepted: nothing
    else per message."""

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


class LeanSMTP(SMTP):
    """aiosmtpd, reading DATA in chunks of up to 64 KB instead of line by line.

    aiosmtpd's own DATA reads, logs and joins every line (~400 for a 30 KB message): measured
    here at ~3.5 ms of CPU per message, as much as the worker that sends it, on the same two
    cores. A relay's CPU is not on the sender's machine; this sink's should weigh as little as
    it can. It still reads every byte up to the lone dot, and answers after the delay."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if self.envelope is None or not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        tail = b"\r\n"  # the end is CRLF . CRLF; an empty message is just . CRLF
        while not tail.endswith(b"\r\n.\r\n"):
            chunk = await self._reader.read(65536)
            if not chunk:
                return  # the client went away
            tail = (tail + chunk)[-5:]
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


def _serve_sink(port: int, delay: float, commands: Connection, lean: bool) -> None:
    """One sink process: aiosmtpd on a socket shared with the other sink processes; answers
    `commands` ("reset", "report") from a thread while its loop serves SMTP."""
    sink = SlowSink(delay)
    server = LeanSMTP if lean else SMTP
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(256)
    sock.setblocking(False)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(
        loop.create_server(lambda: server(sink, hostname="127.0.0.1"), sock=sock)
    )

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

    def __init__(self, port: int, delay: float, count: int, lean: bool = True) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for _ in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_serve_sink, args=(port, delay, theirs, lean), daemon=True
            )
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)
        self.received: Counter[str] = Counter()
        self.first = self.last = 0.0
        self.cpu: list[float] = [0.0] * count
        self.used: list[float] = [0.0] * count  # each process's CPU seconds in the last run
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
        self.used = used

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


class Machine:
    """Samples /proc/stat (all cores) every 0.2 s, so a run's busy share can be read for the
    window in which the sink received its messages."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int, int]] = []  # (monotonic, busy ticks, all ticks)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stopping.is_set():
            ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
            idle = ticks[3] + ticks[4]  # idle and iowait
            self.samples.append((time.monotonic(), sum(ticks) - idle, sum(ticks)))
            self.stopping.wait(0.2)

    def busy(self, start: float, end: float) -> float:
        """Share of all the machine's cores busy between `start` and `end` (0..1)."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return float("nan")
        (_, busy0, all0), (_, busy1, all1) = inside[0], inside[-1]
        return (busy1 - busy0) / max(all1 - all0, 1)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields from the 3rd (state) on: the command name may hold spaces."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def postmaster_of(admin_url: str) -> int | None:
    """The PostgreSQL server's main process, when it runs on this machine."""
    import psycopg

    url = make_url(admin_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        try:  # while the backend lives
            parent = int(_stat(int(row[0]) if row else 0)[1])
            return parent if "postgres" in Path(f"/proc/{parent}/cmdline").read_text() else None
        except (OSError, ValueError, IndexError):
            return None  # another machine (or another pid namespace)


def postgres_cpu(postmaster: int | None) -> float:
    """CPU seconds used so far by the whole PostgreSQL server: the postmaster, its live
    children, and (the postmaster's cutime/cstime) every child that ended, such as a worker's
    backend. Other databases' sessions on the same server count too."""
    if postmaster is None:
        return float("nan")
    fields = _stat(postmaster)
    ticks = sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                child = _stat(int(entry.name))
            except OSError:
                continue  # ended meanwhile
            if int(child[1]) == postmaster:
                ticks += int(child[11]) + int(child[12])
    return ticks / TICK


def children_cpu() -> float:
    """CPU seconds of this process's ended, waited-for children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Figures:
    rate: float  # msg/s at the sink, first to last DATA
    messages: int
    lost: int
    duplicated: int
    seconds: float  # first to last DATA
    worker_cpu: float  # CPU seconds of the worker processes, start-up included
    sink_cpu: list[float]  # CPU seconds of each sink process while the run lasted
    postgres_cpu: float
    busy: float  # share of all cores busy between first and last DATA


def run(
    admin_url: str,
    sink: Sinks,
    machine: Machine,
    postmaster: int | None,
    port: int,
    workers: int,
    recipients: int,
    connections: int,
) -> Figures:
    """One send by `workers` processes, and where the CPU went."""
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
        worker_cpu, pg_cpu = children_cpu(), postgres_cpu(postmaster)
        processes = [syndicate(folder, env, "-q", "send", "latest") for _ in range(workers)]
        for process in processes:
            if process.wait() != 0:
                raise SystemExit(f"send failed: {process.stderr.read().decode()[-2000:]}")
        worker_cpu, pg_cpu = children_cpu() - worker_cpu, postgres_cpu(postmaster) - pg_cpu
        sink.collect()
        received = dict(sink.received)
        seconds = max(sink.last - sink.first, 1e-9)
        return Figures(
            rate=sum(received.values()) / seconds,
            messages=sum(received.values()),
            lost=sum(1 for a in addresses if a not in received),
            duplicated=sum(1 for n in received.values() if n > 1),
            seconds=seconds,
            worker_cpu=worker_cpu,
            sink_cpu=list(sink.used),
            postgres_cpu=pg_cpu,
            busy=machine.busy(sink.first, sink.last),
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        admin_command(admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def report(workers: int, connections: int, recipients: int, f: Figures, load: str) -> str:
    ms = 1000 / max(f.messages, 1)
    sink_total = sum(f.sink_cpu)
    local_pg = f.postgres_cpu == f.postgres_cpu  # not NaN: the server runs on this machine
    per_message = (f.worker_cpu + sink_total + (f.postgres_cpu if local_pg else 0.0)) * ms
    pg = f"{f.postgres_cpu * ms:.2f} ms" if local_pg else "not on this machine (not counted)"
    cores = os.cpu_count() or 1
    sinks = " + ".join(f"{100 * c / f.seconds:.0f}" for c in f.sink_cpu)
    return (
        f"{workers} worker(s) x {connections} connections: {f.rate:8.1f} msg/s   "
        f"lost {f.lost}   duplicated {f.duplicated}   ({recipients:,} readers, "
        f"{f.seconds:.1f} s)   load average {load} -> {_load()}\n"
        f"    CPU per message: worker(s) {f.worker_cpu * ms:.2f} ms, sink {sink_total * ms:.2f} ms "
        f"({sinks} % of a core), PostgreSQL {pg}; "
        f"together {per_message:.2f} ms = at most {cores * 1000 / per_message:.0f} msg/s "
        f"on {cores} cores\n"
        f"    machine: {100 * f.busy:.0f} % of {cores} cores busy while the sink received"
        + ("  <- SATURATED: every core busy" if f.busy >= 0.9 else "")
    )


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
    parser.add_argument(
        "--plain-sink", action="store_true", help="aiosmtpd's own line-by-line DATA reader"
    )
    args = parser.parse_args()
    if not args.admin_url:
        raise SystemExit("give --admin-url (or set SYNDICATE_TEST_POSTGRES_URL)")
    port = free_port()
    sink = Sinks(port, args.delay_ms / 1000, args.sink_processes, lean=not args.plain_sink)
    machine = Machine()
    postmaster = postmaster_of(args.admin_url)
    try:
        figures: dict[int, Figures] = {}
        print(
            f"{os.cpu_count()} CPU(s); load average {_load()} before the first run; "
            f"sink: {args.sink_processes} process(es) of aiosmtpd "
            f"({'its own DATA reader' if args.plain_sink else 'DATA read in chunks'}), "
            f"{args.delay_ms:g} ms per DATA"
        )
        for workers in (1, 2):
            before = _load()
            figures[workers] = run(
                args.admin_url,
                sink,
                machine,
                postmaster,
                port,
                workers,
                args.recipients,
                args.connections,
            )
            print(report(workers, args.connections, args.recipients, figures[workers], before))
        ratio = figures[2].rate / figures[1].rate
        print(f"ratio 2 workers / 1 worker: {ratio:.2f} (target >= 1.8)")
        if ratio < 1.8 and figures[2].busy >= 0.9:
            print(
                f"    short of the target with the machine saturated: {100 * figures[2].busy:.0f} %"
                " of every core busy during the 2-worker run (workers, sink and PostgreSQL share"
                " them)"
            )
    finally:
        sink.stop()
        machine.stop()


if __name__ == "__main__":
    main()
