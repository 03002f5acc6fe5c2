"""`syndicate status`: what is coming, what went out (with counts), who is subscribed, what came
back. Times are shown in the author's time zone.

While `syndicate run` runs, it answers the command for the asker (`answerer`, cli/by_daemon.py):
the same `show`, written for the asker's terminal.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from syndicate import db
from syndicate.cli import common
from syndicate.cli.common import app, iso, json_text, runtime_of
from syndicate.cli.lazy import lazy_module
from syndicate.cli.plain import text
from syndicate.cli.send_control import print_waits, send_json, state_text, waiting
from syndicate.cli.tables import new_table, print_table
from syndicate.models import DeliveryState, RecipientKind, SendState
from syndicate.scheduling.timeparse import short

if TYPE_CHECKING:
    from rich.console import Console

    from syndicate.feedwatch.health import FeedHealth
    from syndicate.runtime import Runtime

corrections = lazy_module("syndicate.corrections.listing")

UPCOMING = (SendState.SCHEDULED.value, SendState.HELD.value, SendState.AWAITING_APPROVAL.value)


def feed_json(feed: FeedHealth) -> dict[str, Any]:
    last, success, error = feed.last_check, feed.last_success, feed.last_error
    return {
        "source": feed.source,
        "checked_at": iso(last.checked_at) if last else None,
        "outcome": last.outcome.value if last else None,
        "http_status": last.http_status if last else None,
        "last_success_at": iso(success.checked_at) if success else None,
        "last_error": error.error if error else None,
        "last_error_at": iso(error.checked_at) if error else None,
        "failing_since": iso(feed.failing_since) if feed.failing_since else None,
    }


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Show upcoming sends, recent sends with delivery counts, recipients and new replies."""
    show(runtime_of(ctx), as_json, common.console, common.err)


def show(rt: Runtime, as_json: bool, console: Console, err: Console) -> None:
    """The status, printed on `console` (warnings on `err`)."""
    from syndicate.feedwatch.health import health

    settings = rt.settings
    engine = rt.engine
    with engine.connect() as conn:
        sends = db.sends.list_sends(conn)
        recipients = db.recipients.count_recipients(conn)
        replies = db.replies.count_replies(conn)
        recent_replies = db.replies.recent_replies(conn)
        daemon = db.locks.running_daemon(conn)
        waits = waiting(conn, rt, sends)
        # This shell's key counts too: a command run from here would sign with it.
        own_key = settings.hmac_key_from_env() or db.meta.get_meta(conn, "generated_hmac_key")
        key_mismatch = db.meta.key_mismatch(db.meta.key_uses(conn, own_key))
    feed = health(engine, settings)
    upcoming = sorted(
        (s for s in sends if s.state in UPCOMING), key=lambda s: db.as_utc(s.scheduled_at)
    )
    recent = [s for s in sends if s.state not in UPCOMING]
    data: dict[str, Any] = {
        "feed": feed_json(feed),
        "daemon": (
            {
                "host": daemon.host,
                "pid": daemon.pid,
                "heartbeat_at": iso(daemon.heartbeat_at),
            }
            if daemon
            else None
        ),
        "key_mismatch": [
            {"entrance": u.entrance, "fingerprint": u.fingerprint, "last": iso(u.last)}
            for u in key_mismatch
        ],
        "recipients": recipients,
        "upcoming": [send_json(s, waits.get(s.id)) for s in upcoming],
        "recent": [send_json(s) for s in recent],
        # Kept for scripts written against the first version: every send, newest first.
        "sends": [send_json(s, waits.get(s.id)) for s in sends],
        "replies": replies,
        "recent_replies": [
            {
                "id": r.id,
                "received_at": iso(r.received_at),
                "kind": r.kind,
                "sender": r.sender,
                "subject": r.subject,
                "post": r.title,
            }
            for r in recent_replies
        ],
    }
    pending_corrections = corrections.waiting_lines(engine)
    data["pending_corrections"] = pending_corrections
    if as_json:
        console.file.write(json_text(data) + "\n")
        return
    zone = settings.zone
    console.print(text(feed.line(zone)))
    console.print(
        f"Daemon: running on {daemon.host} (pid {daemon.pid}), last heartbeat "
        f"{short(daemon.heartbeat_at, zone)}"
        if daemon
        else "Daemon: not running ('syndicate run' starts it)"
    )
    if key_mismatch:
        err.print(
            "[bold red]Warning:[/] these entrances sign and check reply tokens with different "
            "keys, so replies through one of them are filed as unmatched. Set [secrets] "
            "key_file in settings.toml, readable by every user syndicate runs as:",
            highlight=False,
        )
        for use in key_mismatch:
            err.print(
                f"  {use.entrance}: key {use.fingerprint}, last used {short(use.last, zone)}",
                highlight=False,
            )
    for kind in RecipientKind:
        counts = recipients.get(kind.value, {})
        shown = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
        console.print(f"{kind.value.capitalize()}s: {shown}")

    table = new_table(
        f"Upcoming sends (times in {settings.author.timezone})",
        ("id", "post", "channel", "state", "when", "embargo"),
    )
    for s in upcoming:
        table.add_row(
            str(s.id),
            s.title,
            s.channel,
            state_text(s, waits),
            short(db.as_utc(s.scheduled_at), zone),
            short(db.as_utc(s.embargo_until), zone),
        )
    print_table(table, console) if upcoming else console.print("Upcoming sends: none")
    print_waits(upcoming, waits, settings, console)

    table = new_table(
        "Recent sends",
        ("id", "post", "channel", "state", "started"),
        counts=("sent", "pending", "deferred", "failed"),
    )
    for s in recent:
        table.add_row(
            str(s.id),
            s.title,
            s.channel,
            s.state,
            short(db.as_utc(s.started_at), zone),
            str(s.count(DeliveryState.SENT)),
            str(s.count(DeliveryState.PENDING, DeliveryState.SENDING)),
            str(s.count(DeliveryState.DEFERRED)),
            str(s.count(DeliveryState.FAILED)),
        )
    print_table(table, console) if recent else console.print("Recent sends: none")

    if recent_replies:
        table = new_table("New replies", ("received", "kind", "from", "subject", "post"))
        for r in recent_replies:
            table.add_row(
                short(db.as_utc(r.received_at), zone),
                r.kind,
                r.sender,
                r.subject,
                r.title or "",
            )
        print_table(table, console)
    for line in pending_corrections:
        console.print(text(line + " ('syndicate corrections list')"))
    # Unread words from people only ('syndicate replies read' marks them read).
    console.print(
        "Unread replies: " + (", ".join(f"{n} {k}" for k, n in replies.items()) or "none")
    )


def answerer(rt: Runtime) -> Callable[[bytes], tuple[int, bytes]]:
    """What the daemon's socket answers to `XSTATUS` (see cli/by_daemon.py), once the asker's
    settings proved to be the daemon's (XSETTINGS): the status as `show` writes it for the
    asker's terminal, base64 of a JSON object."""

    def answer(request: bytes) -> tuple[int, bytes]:
        asked = json.loads(base64.b64decode(request, validate=True))
        out, err = _console(asked["out"]), _console(asked["err"], stderr=True)
        show(rt, bool(asked["json"]), out, err)
        written = {"stdout": _text(out), "stderr": _text(err), "code": 0}
        return 250, base64.b64encode(json.dumps(written).encode())

    return answer


def _console(terminal: list[Any], *, stderr: bool = False) -> Console:
    """A console that writes what cli.common's would write on the asker's terminal, as
    by_daemon.terminal describes it."""
    from rich.console import Console

    is_terminal, width, height, color_system, no_color = terminal
    if color_system not in ("standard", "256", "truecolor", "windows"):
        color_system = None
    return Console(
        file=io.StringIO(),
        stderr=stderr,
        soft_wrap=True,
        force_terminal=bool(is_terminal),
        force_interactive=False,
        color_system=color_system,
        no_color=bool(no_color),
        width=_size(width, 80),
        height=_size(height, 25),
        legacy_windows=False,
    )


def _size(value: Any, default: int) -> int:
    return value if type(value) is int and 1 <= value <= 10_000 else default


def _text(console: Console) -> str:
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()
