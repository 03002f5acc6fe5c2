"""Fan-out benchmark: how fast syndicate sends one edition to N readers over SMTP, against the
raw ceiling of the same machine, and how much memory it needs.

    python bench/fanout.py --recipients 100000

Needs Postfix's smtp-sink (/usr/sbin/smtp-sink, Debian package `postfix`) or falls back to an
aiosmtpd sink in another process. Everything runs on 127.0.0.1. Prints, in one run:
raw ceiling (pre-built bytes over persistent smtplib connections), syndicate's full path
(database, compose, transport, state), their ratio, a naive baseline (Jinja2 + premailer per
recipient, one new SMTP connection per message) and the peak RSS of the syndicate runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from syndicate import db, settings  # noqa: E402
from syndicate.delivery import dispatch  # noqa: E402
from syndicate.delivery.compose import Composer, compose  # noqa: E402
from syndicate.delivery.mime import as_bytes  # noqa: E402
from syndicate.delivery.transports.null import NullTransport  # noqa: E402
from syndicate.delivery.transports.smtp import SmtpTransport, send_prepared  # noqa: E402
from syndicate.models import Channel, Post, Recipient, RecipientKind  # noqa: E402
from syndicate.render import EditionCache, make_environment, render_edition  # noqa: E402
from syndicate.runtime import Runtime  # noqa: E402

PARAGRAPH = (
    "<p>The first thing I ever had published was a letter to the editor. I was fourteen, and "
    "I was furious about the closure of the outdoor swimming pool, and I wrote three drafts "
    "before my mother said it was <em>quite strong enough</em>. It ran on a Thursday, "
    "between a complaint about parking and a poem about autumn, and I have <a "
    'href="https://blog.example.com/letters">never been prouder</a> of anything.</p>\n'
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sink(port: int) -> subprocess.Popen[bytes]:
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if Path(sink).exists():
        command = [sink, "-u", "nobody", f"127.0.0.1:{port}", "1000"]
        if os.geteuid() != 0:
            command = [sink, f"127.0.0.1:{port}", "1000"]
    else:
        command = [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Sink",
        ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the SMTP sink ({command[0]}) did not start on port {port}")


def make_project(folder: Path, port: int, connections: int, batch: int) -> settings.Settings:
    for name in ("templates", "subscribers", "examples"):
        shutil.copytree(ROOT / name, folder / name)
    text = (ROOT / "settings.toml").read_text()
    text = text.replace('kind = "outbox"', 'kind = "smtp"')
    text = text.replace('host = "localhost"\nport = 587', f'host = "127.0.0.1"\nport = {port}')
    text = text.replace('security = "starttls"', 'security = "none"')
    text = text.replace("batch_size = 100\n", f"batch_size = {batch}\n", 1)
    text = text.replace("connections = 2", f"connections = {connections}")
    text = text.replace("max_per_connection = 1000", "max_per_connection = 0")
    (folder / "settings.toml").write_text(text)
    return settings.load(folder / "settings.toml")


def seed(cfg: settings.Settings, recipients: int) -> tuple[int, Post]:
    """A realistic post (~25 KB of HTML email once rendered) and `recipients` readers."""
    engine = db.connect(cfg.database_url)
    post = Post(
        guid="bench-1",
        title="Sir — in praise of the letters page",
        link="https://blog.example.com/letters",
        author="Jane Marlowe",
        published=datetime(2026, 10, 2, 9, 0, tzinfo=UTC),
        summary_html=PARAGRAPH,
        content_html=PARAGRAPH * 30,
    )
    stamp = db.now()
    with engine.begin() as conn:
        post_id = db.posts.insert_post(conn, post, eligible=True)
        send_id = db.sends.create_send(conn, post_id, Channel.NEWSLETTER, stamp)
        step = 50_000
        for start in range(0, recipients, step):
            conn.execute(
                insert(db.schema.recipients),
                [
                    {
                        "kind": "reader",
                        "email": f"reader{i}@example.org",
                        "email_key": f"reader{i}@example.org",
                        "name": f"Reader Nummer {i}" if i % 4 else f"Zoë Pérez {i}",
                        "status": "active",
                        "fields": {},
                        "created_at": stamp,
                        "updated_at": stamp,
                    }
                    for i in range(start, min(start + step, recipients))
                ],
            )
    assert send_id is not None
    with engine.connect() as conn:
        stored = db.posts.get_post(conn, post_id)
    engine.dispose()  # the last connection closes: SQLite checkpoints its WAL
    assert stored is not None
    return send_id, stored


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the process image, whereas
    ru_maxrss survives exec on Linux and would report the parent's peak after fork + exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    """The syndicate run, alone in its process so its peak RSS is its own."""
    cfg = settings.load(Path(args.child) / "settings.toml")
    runtime = Runtime(cfg)
    assert runtime.key  # opened before the clock starts, as in the daemon
    transport = NullTransport() if args.null else SmtpTransport(cfg.transport.smtp)
    started = time.perf_counter()
    summary = dispatch.run_send(
        runtime, args.send_id, transport, batch_size=cfg.transport.smtp.batch_size
    )
    seconds = time.perf_counter() - started
    peak_mb = peak_rss_mb()
    print(
        json.dumps(
            {
                "sent": summary.sent,
                "seconds": seconds,
                "peak_mb": peak_mb,
                "failed": summary.failed,
                "deferred": summary.deferred,
            }
        )
    )


def run_syndicate(folder: Path, send_id: int, *, null: bool = False) -> dict:
    command = [sys.executable, __file__, "--child", str(folder), "--send-id", str(send_id)]
    result = subprocess.run(
        command + (["--null"] if null else []), capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise SystemExit(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def sample_messages(cfg: settings.Settings, post: Post, count: int) -> list[bytes]:
    env = make_environment(cfg.path(cfg.paths.templates))
    editions = EditionCache(post, Channel.NEWSLETTER, cfg, env)
    composer = Composer(editions, dispatch.make_sender(cfg, b"k" * 32), 1, db.now())
    return [
        as_bytes(
            composer.message(
                i, Recipient(i, RecipientKind.READER, f"reader{i}@example.org", f"Reader {i}")
            )
        )
        for i in range(count)
    ]


def raw_ceiling(
    port: int, messages: list[bytes], total: int, connections: int, *, smtplib_only: bool
) -> float:
    """Pre-built bytes over `connections` persistent smtplib connections: msgs/s. With
    `smtplib_only`, each message goes through `SMTP.sendmail`; otherwise through the transport's
    own DATA routine (`send_prepared`), the strictest ceiling for syndicate."""

    def push(share: int) -> None:
        smtp = smtplib.SMTP("127.0.0.1", port)
        for i in range(share):
            data = messages[i % len(messages)]
            if smtplib_only:
                smtp.sendmail("jane@notes.example.com", [f"reader{i}@example.org"], data)
            else:
                send_prepared(smtp, "jane@notes.example.com", f"reader{i}@example.org", data)
        smtp.quit()

    shares = [
        total // connections + (1 if i < total % connections else 0) for i in range(connections)
    ]
    threads = [threading.Thread(target=push, args=(s,)) for s in shares]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return total / (time.perf_counter() - started)


def naive(cfg: settings.Settings, post: Post, port: int, count: int) -> float:
    """What a simple script does: render (Jinja2 + premailer) per recipient, new connection each."""
    env = make_environment(cfg.path(cfg.paths.templates))
    sender = dispatch.make_sender(cfg, b"k" * 32)
    started = time.perf_counter()
    for i in range(count):
        edition = render_edition(post, Channel.NEWSLETTER, cfg, env)
        recipient = Recipient(i, RecipientKind.READER, f"reader{i}@example.org", f"Reader {i}")
        data = as_bytes(compose(edition, recipient, 1, sender, db.now()))
        smtp = smtplib.SMTP("127.0.0.1", port)
        smtp.sendmail(sender.from_address, [recipient.email], data)
        smtp.quit()
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--naive-sample", type=int, default=500)
    parser.add_argument(
        "--rss",
        default="10000,100000",
        help="recipient counts for the peak-RSS runs (comma-separated)",
    )
    parser.add_argument(
        "--million",
        action="store_true",
        help="also measure peak RSS at 1,000,000 recipients (null transport)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--send-id", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--null", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    port = free_port()
    sink = start_sink(port)
    work = Path(tempfile.mkdtemp(prefix="syndicate-bench-"))
    try:
        print(
            f"machine: {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}; sink: "
            f"{'smtp-sink' if Path('/usr/sbin/smtp-sink').exists() else 'aiosmtpd'}; "
            f"{args.connections} connection(s), batches of {args.batch_size}"
        )
        main_dir = work / "main"
        main_dir.mkdir()
        cfg = make_project(main_dir, port, args.connections, args.batch_size)
        send_id, post = seed(cfg, args.recipients)
        messages = sample_messages(cfg, post, 1000)
        size = sum(map(len, messages)) / len(messages)
        print(f"message size: {size / 1024:.1f} KB on the wire (HTML + text, quoted-printable)")

        plain = raw_ceiling(port, messages, args.recipients, args.connections, smtplib_only=True)
        print(
            f"raw ceiling:  {plain:8,.0f} msg/s  ({args.recipients:,} pre-built messages, "
            "smtplib sendmail)"
        )
        ceiling = raw_ceiling(port, messages, args.recipients, args.connections, smtplib_only=False)
        print(
            f"raw ceiling:  {ceiling:8,.0f} msg/s  ({args.recipients:,} pre-built messages, "
            "syndicate's DATA routine)"
        )
        ceiling = max(ceiling, plain)
        result = run_syndicate(main_dir, send_id)
        rate = result["sent"] / result["seconds"]
        print(
            f"syndicate:    {rate:8,.0f} msg/s  ({result['sent']:,} sent in "
            f"{result['seconds']:.1f} s, peak RSS {result['peak_mb']:.0f} MB)"
        )
        print(
            f"ratio:        {rate / ceiling:8.2f}       (target >= 0.8; against the higher ceiling)"
        )
        if args.naive_sample:
            slow = naive(cfg, post, port, args.naive_sample)
            print(
                f"naive:        {slow:8,.0f} msg/s  ({args.naive_sample} recipients; syndicate "
                f"is {rate / slow:.1f}x faster, target >= 10x)"
            )

        sizes = [int(n) for n in args.rss.split(",") if n] + ([1_000_000] if args.million else [])
        for n in sizes:
            if n == args.recipients:
                print(f"peak RSS {n:>9,}: {result['peak_mb']:6.0f} MB (smtp, run above)")
                continue
            folder = work / f"rss{n}"
            folder.mkdir()
            null = n > 100_000
            rss_cfg = make_project(folder, port, args.connections, args.batch_size)
            rss_send, _ = seed(rss_cfg, n)
            measured = run_syndicate(folder, rss_send, null=null)
            print(
                f"peak RSS {n:>9,}: {measured['peak_mb']:6.0f} MB "
                f"({'null' if null else 'smtp'} transport, "
                f"{measured['sent'] / measured['seconds']:,.0f} msg/s)"
            )
    finally:
        sink.terminate()
        sink.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
