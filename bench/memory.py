"""Peak memory of the whole `syndicate send` process, list sync included, as the list grows.

    python bench/memory.py                              # 10,000 and 100,000 readers, SQLite
    python bench/memory.py --sizes 10000,100000,1000000
    python bench/memory.py --admin-url postgresql+psycopg://postgres@…/postgres  # PostgreSQL

For each size: a new project whose posts are recorded, then a readers.csv of that many rows,
then, each in a process of its own: `syndicate status` (the baseline: the interpreter and
libraries); `syndicate send latest` (the list synced from the CSV, the send planned and sent to
Postfix's smtp-sink); and a second `send` of the same post after one row was added to the list
(the list is read again, only that row is new). Prints each process's peak RSS (`ru_maxrss`
from wait4) and time; the send's peak should stay within 100 MB and flat as the list grows.

With `--admin-url` each size gets a new PostgreSQL database of its own (dropped afterwards).
`--plan-only` points the transport at a closed port: the send syncs and plans, then stops at
"cannot connect" (for 1,000,000 readers, where sending takes a quarter of an hour).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fanout import free_port, start_sink  # noqa: E402


def make_project(folder: Path, port: int) -> None:
    for name in ("templates", "subscribers", "examples"):
        shutil.copytree(ROOT / name, folder / name)
    (folder / "subscribers" / "readers.csv").write_text("email,name\n", encoding="utf-8")
    text = (ROOT / "settings.toml").read_text(encoding="utf-8")
    for old, new in (
        ('first_run = "newest"', 'first_run = "none"'),
        ('kind = "outbox"', 'kind = "smtp"'),
        ('host = "localhost"\nport = 587', f'host = "127.0.0.1"\nport = {port}'),
        ('security = "starttls"', 'security = "none"'),
    ):
        assert old in text, old
        text = text.replace(old, new, 1)
    (folder / "settings.toml").write_text(text, encoding="utf-8")


def write_readers(folder: Path, readers: int) -> None:
    with (folder / "subscribers" / "readers.csv").open("w", encoding="utf-8") as file:
        file.write("email,name\n")
        for n in range(readers):
            file.write(f"reader{n:07d}@bench.example.com,Reader {n}\n")


def measure(folder: Path, env: dict[str, str], *args: str) -> tuple[float, float, int]:
    """(peak RSS in MB, seconds, exit status) of one `syndicate` process."""
    command = [sys.executable, "-m", "syndicate", "--config", str(folder / "settings.toml")]
    started = time.monotonic()
    process = subprocess.Popen(
        [*command, *args], cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    error = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1):
        raise SystemExit(f"syndicate {' '.join(args)}: {error.decode()[-2000:]}")
    return usage.ru_maxrss / 1024, time.monotonic() - started, process.returncode


def admin_command(admin_url: str, sql: str) -> None:
    import psycopg
    from sqlalchemy import make_url

    url = make_url(admin_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def run(size: int, port: int, database_url: str, admin_url: str = "") -> None:
    scratch = Path(tempfile.mkdtemp(prefix="syndicate-bench-memory-"))
    database = f"syndicate_bench_memory_{os.getpid()}_{size}"
    if admin_url:
        from sqlalchemy import make_url

        admin_command(admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin_command(admin_url, f'CREATE DATABASE "{database}"')
        url = make_url(admin_url).set(database=database)
        database_url = url.render_as_string(hide_password=False)
    try:
        folder = scratch / "project"
        make_project(folder, port)
        env = dict(os.environ, XDG_STATE_HOME=str(scratch / "state"))
        env.pop("SYNDICATE_DATABASE_URL", None)
        if database_url:
            env["SYNDICATE_DATABASE_URL"] = database_url
        # The feed's posts recorded (none sent), with an empty list; then the list is written,
        # so the send below is the one that syncs it.
        if measure(folder, env, "-q", "run", "--once")[2]:
            raise SystemExit("run --once failed")
        write_readers(folder, size)
        baseline, _, _ = measure(folder, env, "-q", "status")
        peak, seconds, status = measure(folder, env, "-q", "send", "latest")
        with (folder / "subscribers" / "readers.csv").open("a", encoding="utf-8") as file:
            file.write("one.more@bench.example.com,One More\n")
        again, again_seconds, _ = measure(folder, env, "-q", "send", "latest")
        print(
            f"{size:>9,} readers   status {baseline:6.1f} MB   send {peak:6.1f} MB "
            f"({seconds:6.1f} s{', stopped: transport' if status else ''})   "
            f"send after a one-row change {again:6.1f} MB ({again_seconds:6.1f} s)   "
            f"load average {os.getloadavg()[0]:.2f}   "
            f"({'PostgreSQL' if database_url else 'SQLite'})",
            flush=True,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if admin_url:
            admin_command(admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="readers, comma-separated")
    parser.add_argument(
        "--database-url",
        default="",
        help="an empty PostgreSQL database per size is your job; default: SQLite in the project",
    )
    parser.add_argument(
        "--admin-url", default="", help="a PostgreSQL administrator's URL: a new database a size"
    )
    parser.add_argument("--plan-only", action="store_true", help="sync and plan, do not send")
    args = parser.parse_args()
    port = free_port()
    sink = None if args.plan_only else start_sink(port)
    print(f"{os.cpu_count()} CPU(s); load average {os.getloadavg()[0]:.2f}; peak RSS per process")
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            run(size, port, args.database_url, args.admin_url)
    finally:
        if sink is not None:
            sink.terminate()
            sink.wait()


if __name__ == "__main__":
    main()
